"""Cluster crop embeddings into materials, vote per mask, merge masks per material."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from samiam.masks import MaskRecord, bbox_of, encode_rle

SINGLE_MATERIAL_SILHOUETTE = 0.25  # below this best silhouette, the crops are one material
SILHOUETTE_TOLERANCE = 0.15  # take the largest K whose silhouette is within 15% of the best


@dataclass
class Clustering:
    """Crop clusters and how their number was chosen.

    Attributes:
        labels: (n_crops,) cluster of each crop.
        n_clusters: the number of clusters used.
        scores: silhouette per candidate k (automatic choice), else empty.
        reason: how ``n_clusters`` was chosen.
    """

    labels: np.ndarray
    n_clusters: int
    scores: dict[int, float]
    reason: str


def standardise(features: np.ndarray) -> np.ndarray:
    """Z-score each feature over the crops of the image (constant features become 0)."""
    return StandardScaler().fit_transform(features.astype(np.float64))


def cluster_crops(features: np.ndarray, n_materials: int, max_materials: int, seed: int, n_masks: int) -> Clustering:
    """K-means on standardised crop features, with an automatic choice of K when asked.

    Automatic K: silhouette score for K = 2..max (at most the number of masks). The silhouette
    favours K = 2 whenever one material (often vacuum) stands apart from the rest, so the
    largest K whose silhouette is within ``SILHOUETTE_TOLERANCE`` (relative) of the best is taken (on the
    synthetic cross-sections this found the true K in 3 of 7 images, against 0 of 7 for the
    plain maximum). If even the best silhouette is below ``SINGLE_MATERIAL_SILHOUETTE`` there is
    no cluster structure: one material. Runs single-threaded: on a few thousand crops OpenMP
    threads only add contention (measured 40x slower on a busy 2-core machine).

    Args:
        features: (n_crops, d) crop embeddings.
        n_materials: wanted K, or 0 for automatic.
        max_materials: upper bound for automatic K.
        seed: K-means seed.
        n_masks: number of masks voting (caps K).

    Returns:
        The clustering.
    """
    with threadpool_limits(1):
        return _cluster_crops(features, n_materials, max_materials, seed, n_masks)


def _cluster_crops(features: np.ndarray, n_materials: int, max_materials: int, seed: int, n_masks: int) -> Clustering:
    n = len(features)
    x = standardise(features)
    if n_materials > 0:
        k = max(1, min(n_materials, n))
        if k == 1:
            return Clustering(np.zeros(n, int), 1, {}, "given")
        km = KMeans(k, n_init=10, random_state=seed).fit(x)
        return Clustering(km.labels_, k, {}, "given")
    upper = min(max_materials, n_masks, n - 1)
    if upper < 2:
        return Clustering(np.zeros(n, int), 1, {}, "auto: too few masks to split")
    scores: dict[int, float] = {}
    fits: dict[int, np.ndarray] = {}
    sample = min(n, 2000)
    for k in range(2, upper + 1):
        km = KMeans(k, n_init=10, random_state=seed).fit(x)
        if len(np.unique(km.labels_)) < 2:
            continue
        scores[k] = float(silhouette_score(x, km.labels_, sample_size=sample, random_state=seed))
        fits[k] = km.labels_
    if not scores:
        return Clustering(np.zeros(n, int), 1, scores, "auto: no separable clusters")
    best = max(scores, key=lambda k: scores[k])
    if scores[best] < SINGLE_MATERIAL_SILHOUETTE:
        return Clustering(
            np.zeros(n, int),
            1,
            scores,
            f"auto: best silhouette {scores[best]:.2f} < {SINGLE_MATERIAL_SILHOUETTE}, one material",
        )
    chosen = max(k for k in scores if scores[k] >= scores[best] * (1 - SILHOUETTE_TOLERANCE))
    return Clustering(
        fits[chosen],
        chosen,
        scores,
        f"auto: largest k within {SILHOUETTE_TOLERANCE:.0%} of the best silhouette ({scores[best]:.2f} at k={best}): "
        f"k={chosen} ({scores[chosen]:.2f})",
    )


def vote(owner: np.ndarray, labels: np.ndarray, n_masks: int, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote of each mask's crops.

    Args:
        owner: (n_crops,) mask of each crop.
        labels: (n_crops,) cluster of each crop.
        n_masks: number of masks.
        n_clusters: number of clusters.

    Returns:
        (cluster per mask, -1 for masks without crops; vote fraction of the winner).
    """
    counts = np.zeros((n_masks, n_clusters))
    np.add.at(counts, (owner, labels), 1)
    total = counts.sum(axis=1)
    winner = np.where(total > 0, counts.argmax(axis=1), -1)
    frac = np.where(total > 0, counts.max(axis=1) / np.maximum(total, 1), 0.0)
    return winner, frac


def merge_by_material(
    records: list[MaskRecord], winner: np.ndarray, confidence: np.ndarray, shape: tuple[int, int]
) -> list[MaskRecord]:
    """Union the masks of each material and make the result disjoint.

    Where masks of different materials overlap, the pixel goes to the mask with the highest
    vote confidence, then the smaller mask (more specific near interfaces). Materials are
    numbered 1.. by decreasing area.

    Args:
        records: masks after the geometric filter.
        winner: material of each mask (-1 = no vote: left out).
        confidence: vote fraction of each mask's winner.
        shape: (H, W).

    Returns:
        One record per material, disjoint, ``material`` = 1-based id.
    """
    owner = np.full(shape, -1, np.int32)
    order = sorted(
        (i for i in range(len(records)) if winner[i] >= 0),
        key=lambda i: (confidence[i], -records[i].area),
    )
    for i in order:  # later paints win
        x, y, w, h = records[i].bbox
        owner[y : y + h, x : x + w][records[i].decode_box()] = winner[i]
    return materials_from_owner(
        owner,
        lambda c: _merge_facts(records, winner, confidence, c),
    )


def _merge_facts(
    records: list[MaskRecord], winner: np.ndarray, confidence: np.ndarray, c: int
) -> tuple[float, dict[str, Any]]:
    members = [i for i in range(len(records)) if winner[i] == c]
    score = float(np.mean([records[i].score for i in members])) if members else 0.0
    extra = {"merged_from": len(members), "vote_confidence": round(float(np.mean(confidence[members])), 3)}
    return score, extra


def materials_from_owner(
    owner: np.ndarray, facts: Callable[[int], tuple[float, dict[str, Any]]] | None = None
) -> list[MaskRecord]:
    """One record per value >= 0 of a material map, numbered 1.. by decreasing area.

    Args:
        owner: (H, W) int map, -1 = unsegmented, c >= 0 = material c.
        facts: ``c -> (score, extra)`` for each material's record (score 1, no extra if None).

    Returns:
        Disjoint records with ``material`` = 1-based id.
    """
    out = []
    for c in np.unique(owner):
        if c < 0:
            continue
        m = owner == c
        score, extra = facts(int(c)) if facts is not None else (1.0, {})
        out.append(MaskRecord(rle=encode_rle(m), bbox=bbox_of(m), area=int(m.sum()), score=score, extra=dict(extra)))
    out.sort(key=lambda r: -r.area)
    for k, r in enumerate(out, start=1):
        r.material = k
    return out

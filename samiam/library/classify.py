"""Name masks by their crops' votes against a material library; ``unknown`` when nothing matches.

Per crop: the classifier (fitted on the library's raw features with the library's own
normalisation) gives a material; its *distance* to that material is the mean Euclidean distance
(standardised features) to its ``k`` nearest library crops of the material, divided by the
material's own typical distance (the median, over the material's library crops, of the same
quantity computed leave-one-out). A distance near 1 means "as close as the examples are to each
other". Per mask: the majority material of its crops; ``confidence`` = its vote fraction;
``distance`` = the median distance of the mask's crops to it. A mask whose distance exceeds
``unknown_distance`` is ``unknown``; unknown masks are grouped by the booster's unsupervised
clustering of their crops, so two unseen phases stay apart.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from samiam.boost.config import BoostConfig
from samiam.boost.merge import cluster_crops, vote
from samiam.errors import ParameterError
from samiam.library.features import Encoder, build_encoder, feature_columns, sample_scaled_crops, scale_for
from samiam.library.store import UNKNOWN, Library
from samiam.masks import MaskRecord, bbox_of, encode_rle

METHODS = ("logreg", "knn", "prototype")


@dataclass
class NamingConfig:
    """How crops are matched to the library.

    Attributes:
        method: ``logreg`` (multinomial logistic regression), ``knn`` (k nearest library crops) or
            ``prototype`` (nearest material mean).
        k: neighbours for ``knn`` and for the distance.
        unknown_distance: masks whose median crop distance to their material exceeds this are
            ``unknown`` (1 = as close as the library's own examples).
        use_intensity: use the ``fft`` encoder's absolute intensity/power columns too.
        crops_per_mask: crops sampled per mask (0 = the booster's ``crops_per_mask``).
        min_confidence: (fill) smallest class probability for a sliding crop to be assigned.
    """

    method: str = "logreg"
    k: int = 5
    unknown_distance: float = 3.0
    use_intensity: bool = False
    crops_per_mask: int = 0
    min_confidence: float = 0.6

    def validate(self) -> NamingConfig:
        """Check ranges; return self.

        Raises:
            ParameterError: a value outside its range.
        """
        if self.method not in METHODS:
            raise ParameterError(f"naming method must be one of {', '.join(METHODS)}, got '{self.method}'")
        if self.k < 1:
            raise ParameterError(f"k must be >= 1, got {self.k}")
        if self.unknown_distance <= 0:
            raise ParameterError(f"unknown distance must be > 0, got {self.unknown_distance}")
        if self.crops_per_mask < 0:
            raise ParameterError(f"crops per mask must be >= 0, got {self.crops_per_mask}")
        if not 0 <= self.min_confidence <= 1:
            raise ParameterError(f"min confidence must be in [0, 1], got {self.min_confidence}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and ``b`` (one matrix product)."""
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def _mean_knn(d: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` smallest values of each row."""
    k = min(k, d.shape[1])
    return np.partition(d, k - 1, axis=1)[:, :k].mean(1)


@dataclass
class CropPrediction:
    """Per crop: material index, its probability (or vote share) and the normalised distance to it.

    Attributes:
        labels: (n,) index into the library's names.
        prob: (n,) probability of that material (``knn``: neighbour share; ``prototype``: 1).
        distance: (n,) normalised k-NN distance to that material.
        distances: (n, n_materials) normalised distance to every material.
    """

    labels: np.ndarray
    prob: np.ndarray
    distance: np.ndarray
    distances: np.ndarray


class MaterialClassifier:
    """Crop classifier fitted on a library's raw features (or on any labelled feature set).

    Args:
        features: (n, d) raw features of the labelled crops.
        labels: (n,) material index of each crop.
        names: material names (index → name).
        encoder: the encoder that made the features (decides the columns used).
        cfg: naming settings.
    """

    def __init__(
        self, features: np.ndarray, labels: np.ndarray, names: list[str], encoder: str, cfg: NamingConfig
    ):
        cfg.validate()
        if len(features) == 0:
            raise ParameterError("cannot fit a material classifier without example crops")
        self.cfg = cfg
        self.names = list(names)
        self.columns = feature_columns(encoder, features.shape[1], cfg.use_intensity)
        x = features[:, self.columns].astype(np.float64)
        self.mean = x.mean(0)
        self.std = np.maximum(x.std(0), 1e-6 * (np.abs(self.mean) + 1.0))
        self.x = (x - self.mean) / self.std
        self.y = np.asarray(labels, int)
        self.present = np.unique(self.y)
        self.scale = np.ones(len(self.names))
        for c in self.present:  # typical leave-one-out k-NN distance inside each material
            xc = self.x[self.y == c]
            if len(xc) < 2:
                continue
            d = _pairwise(xc, xc)
            np.fill_diagonal(d, np.inf)
            self.scale[c] = max(float(np.median(_mean_knn(d, min(cfg.k, len(xc) - 1)))), 1e-6)
        self.model = None
        if cfg.method == "logreg" and self.present.size > 1:
            from sklearn.linear_model import LogisticRegression

            with threadpool_limits(1):
                self.model = LogisticRegression(C=1.0, max_iter=3000).fit(self.x, self.y)

    @classmethod
    def from_library(cls, library: Library, cfg: NamingConfig) -> MaterialClassifier:
        """Fit on every crop of the library."""
        x, y = library.training_set()
        return cls(x, y, library.names, library.encoder, cfg)

    def distances(self, z: np.ndarray) -> np.ndarray:
        """(n, n_materials) normalised k-NN distances of standardised crops to every material."""
        out = np.full((len(z), len(self.names)), np.inf)
        d = _pairwise(z, self.x)
        for c in self.present:
            out[:, c] = _mean_knn(d[:, self.y == c], self.cfg.k) / self.scale[c]
        return out

    def predict(self, features: np.ndarray) -> CropPrediction:
        """Classify raw crop features.

        Args:
            features: (n, d) raw features from the same encoder.

        Returns:
            The per-crop prediction.
        """
        z = (features[:, self.columns].astype(np.float64) - self.mean) / self.std
        dist = self.distances(z)
        n = len(z)
        if self.present.size == 1:
            labels = np.full(n, self.present[0])
            prob = np.ones(n)
        elif self.cfg.method == "logreg":
            with threadpool_limits(1):
                p = self.model.predict_proba(z)
            labels = self.model.classes_[p.argmax(1)]
            prob = p.max(1)
        elif self.cfg.method == "knn":
            d = _pairwise(z, self.x)
            k = min(self.cfg.k, len(self.x))
            nn = np.argpartition(d, k - 1, axis=1)[:, :k]
            counts = np.zeros((n, len(self.names)))
            np.add.at(counts, (np.repeat(np.arange(n), k), self.y[nn].ravel()), 1)
            labels = counts.argmax(1)
            prob = counts.max(1) / k
        else:  # prototype: nearest material mean
            protos = np.stack([self.x[self.y == c].mean(0) for c in self.present])
            labels = self.present[_pairwise(z, protos).argmin(1)]
            prob = np.ones(n)
        return CropPrediction(labels=labels, prob=prob, distance=dist[np.arange(n), labels], distances=dist)


def paint_disjoint(
    records: list[MaskRecord], keys: list[Any], priority: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, list[Any]]:
    """Paint masks into one owner map: where they overlap, the higher priority wins.

    Args:
        records: masks (``keys[i] is None`` = left out).
        keys: the group each mask belongs to.
        priority: (n,) paint order key; ties go to the smaller mask.
        shape: (H, W).

    Returns:
        (HxW int32 map of group index, -1 = none; the groups in index order).
    """
    groups: list[Any] = []
    for k in keys:
        if k is not None and k not in groups:
            groups.append(k)
    owner = np.full(shape, -1, np.int32)
    order = sorted(
        (i for i in range(len(records)) if keys[i] is not None), key=lambda i: (priority[i], -records[i].area)
    )
    for i in order:  # later paints win
        owner[records[i].decode()] = groups.index(keys[i])
    return owner, groups


def _group_unknown(
    crop_feats: np.ndarray, owner: np.ndarray, unknown: np.ndarray, cfg: BoostConfig
) -> dict[int, int]:
    """Group unknown masks by unsupervised clustering of their crops (mask index → group)."""
    idx = np.flatnonzero(unknown)
    if idx.size <= 1:
        return {int(i): 0 for i in idx}
    sel = np.isin(owner, idx)
    local = np.searchsorted(idx, owner[sel])
    clustering = cluster_crops(crop_feats[sel], 0, cfg.max_materials, cfg.seed, int(idx.size))
    winner, _ = vote(local, clustering.labels, int(idx.size), clustering.n_clusters)
    return {int(i): int(w) for i, w in zip(idx, winner, strict=True)}


def name_masks(
    image: np.ndarray,
    kept: list[MaskRecord],
    library: Library,
    cfg: BoostConfig,
    *,
    naming: NamingConfig | None = None,
    pixel_size_nm: float | None = None,
    encoder: Encoder | None = None,
    classifier: MaterialClassifier | None = None,
) -> tuple[list[MaskRecord], dict[str, Any]]:
    """Name the masks left by the geometric filter and merge masks of the same name.

    Args:
        image: HxW float image in [0, 1].
        kept: masks after ``samiam.boost.geometry.geometric_filter``.
        library: the material library.
        cfg: booster settings (crop sampling, seed, ``max_materials`` for grouping unknowns).
        naming: matching settings (defaults if None).
        pixel_size_nm: the image's pixel size in nm, if known (crops are resampled to the library's).
        encoder: a prepared encoder (built from ``library.encoder`` if None; pass one to reuse it).
        classifier: a prepared classifier (fitted on ``library`` if None).

    Returns:
        (one disjoint record per material name, plus one per group of unknown masks, largest first:
        ``material`` = the name or ``"unknown"``, ``extra`` = distance, confidence, masks merged;
        info dict for the run record).
    """
    naming = (naming or NamingConfig()).validate()
    h, w = image.shape
    timings: dict[str, float] = {}
    info: dict[str, Any] = {
        "library_materials": library.names,
        "naming": naming.to_dict(),
        "filtered_masks": len(kept),
    }
    if not kept:
        info.update(materials=0, materials_reason="no masks left after the filter", timings=timings)
        return [], info

    t = time.perf_counter()
    scale = scale_for(library.pixel_size_nm, pixel_size_nm)
    per_mask = naming.crops_per_mask or cfg.crops_per_mask
    crops = sample_scaled_crops(image, kept, library.crop_size, per_mask, cfg.min_crop_size, cfg.seed, scale)
    timings["crops"] = time.perf_counter() - t
    info.update(crop_size=library.crop_size, crop_scale=round(scale, 4), crops=len(crops.crops))
    if not crops.crops:
        info.update(materials=0, materials_reason="no mask wide enough for a crop", timings=timings)
        return [], info

    t = time.perf_counter()
    enc = encoder if encoder is not None else build_encoder(library.encoder)
    feats = enc(crops.crops)
    timings["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    clf = classifier if classifier is not None else MaterialClassifier.from_library(library, naming)
    pred = clf.predict(feats)
    n = len(kept)
    winner, conf = vote(crops.owner, pred.labels, n, len(library.names))
    has = winner >= 0
    dist = np.full(n, np.inf)
    prob = np.zeros(n)
    for i in np.flatnonzero(has):  # one median per mask: few dozen masks
        mine = (crops.owner == i) & (pred.labels == winner[i])
        dist[i] = float(np.median(pred.distances[crops.owner == i, winner[i]]))
        prob[i] = float(pred.prob[mine].mean())
    unknown = has & (dist > naming.unknown_distance)
    groups = _group_unknown(feats, crops.owner, unknown, cfg)
    keys: list[Any] = [None] * n
    for i in np.flatnonzero(has):
        keys[i] = (UNKNOWN, groups[int(i)]) if unknown[i] else library.names[winner[i]]
    timings["classify"] = time.perf_counter() - t

    t = time.perf_counter()
    owner, group_keys = paint_disjoint(kept, keys, conf * prob, (h, w))
    final: list[MaskRecord] = []
    per_material: dict[str, Any] = {}
    for g, key in enumerate(group_keys):
        m = owner == g
        if not m.any():
            continue
        members = [i for i in range(n) if keys[i] == key]
        name = key if isinstance(key, str) else UNKNOWN
        extra = {
            "merged_from": len(members),
            "distance": round(float(np.median(dist[members])), 3),
            "confidence": round(float(np.mean(conf[members] * prob[members])), 3),
        }
        if not isinstance(key, str):
            extra["unknown_group"] = int(key[1])
            extra["nearest"] = library.names[int(np.bincount(winner[members]).argmax())]
        score = float(np.mean([kept[i].score for i in members]))
        final.append(
            MaskRecord(
                rle=encode_rle(m), bbox=bbox_of(m), area=int(m.sum()), score=score, material=name, extra=extra
            )
        )
        per_material[name if isinstance(key, str) else f"{UNKNOWN}:{key[1]}"] = extra
    final.sort(key=lambda r: -r.area)
    timings["merge"] = time.perf_counter() - t
    info.update(
        materials=len(final),
        materials_reason=f"named by the library ({naming.method})",
        named={k: v for k, v in per_material.items()},
        unknown_masks=int(unknown.sum()),
        masks_without_crops=int((~has).sum()),
        timings={k: round(v, 4) for k, v in timings.items()},
    )
    return final, info

"""Name masks by their crops' votes against a material library; ``unknown`` when nothing matches.

Per crop: the classifier (fitted on the library's raw features with the library's own
normalisation) gives a material; its *distance* to that material is the mean Euclidean distance
(standardised features) to its ``k`` nearest library crops of the material, divided by the
material's own typical distance (the median, over the material's library crops, of the same
quantity computed leave-one-out). A distance near 1 means "as close as the examples are to each
other". Per mask: the majority material of its crops; ``confidence`` = its vote share x the
mean class probability of those votes; ``distance`` = the median distance of the mask's crops to
it. A mask whose distance exceeds ``unknown_distance`` is ``unknown``; unknown masks that pass
for one material (the same distance test among themselves) are grouped, so two unseen phases
stay apart. Crops come from the crop-size ladder and meet only library crops of their side.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from samiam.boost.config import BoostConfig
from samiam.boost.merge import vote
from samiam.errors import ParameterError
from samiam.library.features import (
    Encoder,
    build_encoder,
    calibrated,
    feature_columns,
    sample_ladder_crops,
    sample_scaled_crops,
    scale_for,
)
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
        min_confidence: masks whose confidence (vote share of their material x mean class
            probability of those votes) is below this are left out: unsegmented, for ``--fill``.
        min_area_frac: final materials (and unknown groups) smaller than this fraction of the image
            are left out (unsegmented): a few stray masks do not make a material.
    """

    method: str = "logreg"
    k: int = 5
    unknown_distance: float = 3.0
    use_intensity: bool = False
    crops_per_mask: int = 0
    min_confidence: float = 0.0
    min_area_frac: float = 0.01

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
        if not 0 <= self.min_area_frac < 1:
            raise ParameterError(f"min material area must be in [0, 1), got {self.min_area_frac}")
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

    def __init__(self, features: np.ndarray, labels: np.ndarray, names: list[str], encoder: str, cfg: NamingConfig):
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
    def from_library(cls, library: Library, cfg: NamingConfig, side: int | None = None) -> MaterialClassifier:
        """Fit on the library's crops of one side (default: the full crop size)."""
        x, y, sizes = library.training_set()
        keep = sizes == (side or library.crop_size)
        return cls(x[keep], y[keep], library.names, library.encoder, cfg)

    @property
    def typical_scale(self) -> float:
        """Median within-material k-NN distance over the materials (standardised units)."""
        return float(np.median(self.scale[self.present]))

    def standardise(self, features: np.ndarray) -> np.ndarray:
        """Raw features → the classifier's columns, standardised on its training crops."""
        return (features[:, self.columns].astype(np.float64) - self.mean) / self.std

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
        z = self.standardise(features)
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


class LibraryClassifier:
    """One ``MaterialClassifier`` per crop side of the library's ladder; crops go to the one of their side.

    Args:
        library: the material library.
        cfg: naming settings.
    """

    def __init__(self, library: Library, cfg: NamingConfig):
        self.names = library.names
        x, y, sizes = library.training_set()
        self.by_side: dict[int, MaterialClassifier] = {}
        for side in np.unique(sizes):
            keep = sizes == side
            if keep.sum() >= 2:
                self.by_side[int(side)] = MaterialClassifier(x[keep], y[keep], library.names, library.encoder, cfg)
        if not self.by_side:
            raise ParameterError("the library has too few crops to fit a classifier")
        self.sides = sorted(self.by_side, reverse=True)
        self.full = self.by_side[self.sides[0]]

    def at(self, side: int) -> MaterialClassifier:
        """The classifier of ``side`` (or of the nearest side the library has)."""
        return self.by_side.get(side) or self.by_side[min(self.sides, key=lambda s: abs(s - side))]

    def predict(self, features: np.ndarray, sides: np.ndarray) -> CropPrediction:
        """Classify raw crop features, each with the classifier of its crop side."""
        n = len(features)
        out = CropPrediction(np.zeros(n, int), np.zeros(n), np.zeros(n), np.full((n, len(self.names)), np.inf))
        for side in np.unique(sides):
            sel = sides == side
            p = self.at(int(side)).predict(features[sel])
            out.labels[sel], out.prob[sel], out.distance[sel], out.distances[sel] = (
                p.labels,
                p.prob,
                p.distance,
                p.distances,
            )
        return out


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


GROUP_CROPS = 8  # crops per unknown mask for grouping (keeps the crop distance matrix small)


def _group_unknown(
    image: np.ndarray,
    kept: list[MaskRecord],
    unknown: np.ndarray,
    best_side: np.ndarray,
    clf: LibraryClassifier,
    enc: Encoder,
    seed: int,
    scale: float,
    threshold: float,
) -> dict[int, int]:
    """Group unknown masks that would pass for one material (mask index → group).

    Crops of all unknown masks are taken at one common ladder side (the largest that fits all), so
    they are comparable. Mask ``b`` matches mask ``a`` when the median k-NN distance of ``b``'s crops
    to ``a``'s, divided by the library's typical within-material distance at that side, is at most
    ``threshold`` (the test a library material must pass), in both directions. Groups are the
    connected components of that relation, numbered by first appearance. One crop distance matrix,
    then one pass per mask (no loop over mask pairs).
    """
    idx = np.flatnonzero(unknown)
    if idx.size <= 1:
        return {int(i): 0 for i in idx}
    side = int(best_side[idx].min())
    crops = sample_scaled_crops(image, [kept[i] for i in idx], side, GROUP_CROPS, side, seed, scale)
    n = idx.size
    close = np.eye(n, dtype=bool)
    if crops.crops:
        sub = clf.at(side)
        z = sub.standardise(enc(crops.crops))
        d = _pairwise(z, z)
        np.fill_diagonal(d, np.inf)  # a crop is not its own neighbour
        members = [np.flatnonzero(crops.owner == j) for j in range(n)]
        to_mask = np.full((len(z), n), np.inf)  # mean k-NN distance of each crop to each mask's crops
        for a, cols in enumerate(members):
            if cols.size:
                to_mask[:, a] = _mean_knn(d[:, cols], sub.cfg.k)
        med = np.full((n, n), np.inf)  # med[b, a]: median over b's crops
        for b, rows in enumerate(members):
            if rows.size:
                med[b] = np.median(to_mask[rows], axis=0)
        close |= (med <= threshold * sub.typical_scale) & (med.T <= threshold * sub.typical_scale)
    from scipy.sparse.csgraph import connected_components

    _, comp = connected_components(close, directed=False)
    order = {c: g for g, c in enumerate(dict.fromkeys(comp.tolist()))}
    return {int(i): order[c] for i, c in zip(idx, comp.tolist(), strict=True)}


@dataclass
class MaskVotes:
    """How the library voted on each mask (the expensive part of naming; thresholds come after).

    Attributes:
        winner: (n,) material index (into the library's names) of each mask, -1 without crops.
        vote_share: (n,) fraction of the mask's crops voting for the winner.
        prob: (n,) mean class probability of those votes.
        distance: (n,) median normalised distance of the mask's crops to the winner.
        best_side: (n,) crop side the mask was sampled at (0 = too thin).
        scale: image pixels per library pixel used for sampling crops.
        encode: the encoder for this image's crops (with the pixel-size calibration).
        info: crops, sides and timings for the run record.
    """

    winner: np.ndarray
    vote_share: np.ndarray
    prob: np.ndarray
    distance: np.ndarray
    best_side: np.ndarray
    scale: float
    encode: Encoder
    info: dict[str, Any]

    @property
    def confidence(self) -> np.ndarray:
        return self.vote_share * self.prob


def vote_masks(
    image: np.ndarray,
    kept: list[MaskRecord],
    library: Library,
    cfg: BoostConfig,
    naming: NamingConfig,
    clf: LibraryClassifier,
    enc: Encoder,
    pixel_size_nm: float | None = None,
) -> MaskVotes:
    """Sample crops in every mask, classify them, and take each mask's majority vote.

    Args:
        image: HxW float image in [0, 1].
        kept: masks after the geometric filter.
        library: the material library.
        cfg: booster settings (crops per mask, seed).
        naming: matching settings.
        clf: the library's classifier.
        enc: the library's encoder.
        pixel_size_nm: the image's pixel size in nm, if known.
    """
    timings: dict[str, float] = {}
    n = len(kept)
    t = time.perf_counter()
    px_scale = scale_for(library.pixel_size_nm, pixel_size_nm)
    encode, scale = calibrated(library.encoder, enc, px_scale)
    per_mask = naming.crops_per_mask or cfg.crops_per_mask
    crops, sides = sample_ladder_crops(image, kept, clf.sides, per_mask, cfg.seed, scale)
    timings["crops"] = time.perf_counter() - t
    votes = MaskVotes(np.full(n, -1), np.zeros(n), np.zeros(n), np.full(n, np.inf), crops.sizes, scale, encode, {})
    votes.info = {"crop_size": library.crop_size, "pixel_scale": round(px_scale, 4), "crops": len(crops.crops)}
    if not crops.crops:
        votes.info["timings"] = timings
        return votes
    t = time.perf_counter()
    feats = encode(crops.crops)
    timings["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    pred = clf.predict(feats, sides)
    votes.winner, votes.vote_share = vote(crops.owner, pred.labels, n, len(library.names))
    for i in np.flatnonzero(votes.winner >= 0):  # one median per mask
        mine = crops.owner == i
        votes.distance[i] = float(np.median(pred.distances[mine, votes.winner[i]]))
        votes.prob[i] = float(pred.prob[mine & (pred.labels == votes.winner[i])].mean())
    timings["classify"] = time.perf_counter() - t
    votes.info["crop_sides"] = {str(k): int(v) for k, v in zip(*np.unique(sides, return_counts=True), strict=True)}
    votes.info["timings"] = timings
    return votes


def assemble_named(
    image: np.ndarray,
    kept: list[MaskRecord],
    votes: MaskVotes,
    library: Library,
    cfg: BoostConfig,
    naming: NamingConfig,
    clf: LibraryClassifier,
) -> tuple[list[MaskRecord], dict[str, Any]]:
    """Decide names from the votes (``unknown``, left-out masks), group unknowns, merge per name.

    Returns:
        (final disjoint masks, largest first; info dict).
    """
    h, w = image.shape
    n = len(kept)
    t = time.perf_counter()
    conf, dist, winner = votes.confidence, votes.distance, votes.winner
    has = winner >= 0
    weak = has & (conf < naming.min_confidence)
    has &= ~weak
    unknown = has & (dist > naming.unknown_distance)
    groups = _group_unknown(
        image, kept, unknown, votes.best_side, clf, votes.encode, cfg.seed, votes.scale, naming.unknown_distance
    )
    keys: list[Any] = [None] * n
    for i in np.flatnonzero(has):
        keys[i] = (UNKNOWN, groups[int(i)]) if unknown[i] else library.names[winner[i]]
    owner, group_keys = paint_disjoint(kept, keys, conf, (h, w))
    final: list[MaskRecord] = []
    named: dict[str, Any] = {}
    small = 0
    for g, key in enumerate(group_keys):
        m = owner == g
        if not m.any():
            continue
        if m.sum() < naming.min_area_frac * h * w:
            small += 1
            continue
        members = [i for i in range(n) if keys[i] == key]
        name = key if isinstance(key, str) else UNKNOWN
        extra: dict[str, Any] = {
            "merged_from": len(members),
            "distance": round(float(np.median(dist[members])), 3),
            "confidence": round(float(np.mean(conf[members])), 3),
        }
        if not isinstance(key, str):
            extra["unknown_group"] = int(key[1])
            extra["nearest"] = library.names[int(np.bincount(winner[members]).argmax())]
        score = float(np.mean([kept[i].score for i in members]))
        final.append(
            MaskRecord(rle=encode_rle(m), bbox=bbox_of(m), area=int(m.sum()), score=score, material=name, extra=extra)
        )
        named[name if isinstance(key, str) else f"{UNKNOWN}:{key[1]}"] = extra
    final.sort(key=lambda r: -r.area)
    info = dict(votes.info)
    info["timings"] = {
        k: round(v, 4) for k, v in {**votes.info.get("timings", {}), "merge": time.perf_counter() - t}.items()
    }
    info.update(
        materials=len(final),
        materials_reason=f"named by the library ({naming.method})",
        named=named,
        unknown_masks=int(unknown.sum()),
        masks_without_crops=int((winner < 0).sum()),
        masks_left_out=int(weak.sum()),
        small_materials_left_out=small,
    )
    return final, info


def name_masks(
    image: np.ndarray,
    kept: list[MaskRecord],
    library: Library,
    cfg: BoostConfig,
    *,
    naming: NamingConfig | None = None,
    pixel_size_nm: float | None = None,
    encoder: Encoder | None = None,
    classifier: LibraryClassifier | None = None,
) -> tuple[list[MaskRecord], dict[str, Any]]:
    """Name the masks left by the geometric filter and merge masks of the same name.

    Args:
        image: HxW float image in [0, 1].
        kept: masks after ``samiam.boost.geometry.geometric_filter``.
        library: the material library.
        cfg: booster settings (crops per mask, seed).
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
    info: dict[str, Any] = {"library_materials": library.names, "naming": naming.to_dict(), "filtered_masks": len(kept)}
    if not kept:
        info.update(materials=0, materials_reason="no masks left after the filter", timings={})
        return [], info
    clf = classifier if classifier is not None else LibraryClassifier(library, naming)
    enc = encoder if encoder is not None else build_encoder(library.encoder)
    votes = vote_masks(image, kept, library, cfg, naming, clf, enc, pixel_size_nm)
    if votes.info["crops"] == 0:
        info.update(votes.info, materials=0, materials_reason="no mask wide enough for a crop")
        return [], info
    final, more = assemble_named(image, kept, votes, library, cfg, naming, clf)
    info.update(more)
    return final, info

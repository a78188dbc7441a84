"""Dense completion (``--fill``): give unsegmented pixels to a material when their texture matches it.

A grid of cells (stride = a quarter of the crop side) covers the image; for every cell holding
unsegmented pixels, a crop centred on the cell is classified against prototypes: the material
library, or, without one, the image's own final masks (crops sampled inside each mask). A cell is
assigned when its crop's class probability is at least ``min_confidence`` and its normalised
distance to that class is at most ``max_distance``; only the cell's unsegmented pixels change.
Cells left over are tried again with smaller crops (the rungs of the crop-size ladder down to
``min_side_frac`` of the crop size), which reach closer to interfaces. Crops that straddle an
interface (mixed texture) or show an unseen phase fail one of the two tests, so those gaps stay
empty. With a library, gaps only take materials that the image's masks already have (unless
``new_materials``), and masks the library could not name (``unknown``) serve as their own
prototypes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from samiam.boost.config import BoostConfig
from samiam.boost.crops import crop_side_for_image
from samiam.errors import ParameterError
from samiam.library.classify import LibraryClassifier, MaterialClassifier, NamingConfig
from samiam.library.features import (
    Encoder,
    build_encoder,
    calibrated,
    ladder_sizes,
    resample,
    sample_scaled_crops,
    scale_for,
)
from samiam.library.store import Library
from samiam.masks import MaskRecord, bbox_of, encode_rle


@dataclass
class FillConfig:
    """Dense completion settings.

    Attributes:
        min_confidence: smallest class probability of a crop to assign its cell.
        max_distance: largest normalised distance of a crop to its class (1 = as close as the
            prototypes are to each other).
        stride_frac: grid stride as a fraction of the crop side.
        min_side_frac: smallest crop side tried, as a fraction of the crop size.
        prototype_crops: crops per mask and side when the image's own masks are prototypes.
        new_materials: with a library, also create materials that no mask of the image has (off:
            a gap crop that looks most like an absent material stays empty).
    """

    min_confidence: float = 0.6
    max_distance: float = 3.0
    stride_frac: float = 0.25
    min_side_frac: float = 0.6
    prototype_crops: int = 48
    new_materials: bool = False

    def validate(self) -> FillConfig:
        """Check ranges; return self.

        Raises:
            ParameterError: a value outside its range.
        """
        if not 0 <= self.min_confidence <= 1:
            raise ParameterError(f"fill min confidence must be in [0, 1], got {self.min_confidence}")
        if self.max_distance <= 0:
            raise ParameterError(f"fill max distance must be > 0, got {self.max_distance}")
        if not 0.05 <= self.stride_frac <= 1:
            raise ParameterError(f"fill stride must be in [0.05, 1] of the crop side, got {self.stride_frac}")
        if not 0 < self.min_side_frac <= 1:
            raise ParameterError(f"fill min side must be in (0, 1] of the crop side, got {self.min_side_frac}")
        if self.prototype_crops < 2:
            raise ParameterError(f"fill prototype crops must be >= 2, got {self.prototype_crops}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _grid(height: int, width: int, side: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (rows, cols) of a crop grid that covers the image, last crop flush with the edge."""

    def axis(n: int) -> np.ndarray:
        starts = np.arange(0, max(n - side, 0) + 1, stride)
        if starts[-1] != n - side:
            starts = np.append(starts, n - side)
        return starts

    return axis(height), axis(width)


def _cell_index(n: int, centres: np.ndarray) -> np.ndarray:
    """For every pixel 0..n-1 along an axis, the index of the nearest crop centre."""
    mids = (centres[1:] + centres[:-1]) / 2.0
    return np.searchsorted(mids, np.arange(n), side="right")


class _Prototypes:
    """Classifiers for gap crops, one per crop side, and what each class fills.

    With a library: the library's materials (target: the mask of that name), plus the image's masks
    the library does not name (``unknown`` groups; target: that mask's index), learnt from crops
    inside them. Without: every final mask (target: its index).
    """

    def __init__(
        self,
        image: np.ndarray,
        final: list[MaskRecord],
        library: Library | None,
        cfg: BoostConfig,
        fill: FillConfig,
        naming: NamingConfig,
        scale: float,
        enc: Encoder,
        classifier: LibraryClassifier | None,
    ):
        self.image, self.final, self.library, self.cfg = image, final, library, cfg
        self.fill, self.naming, self.scale, self.enc = fill, naming, scale, enc
        if library is not None:
            self.lib_clf = classifier or LibraryClassifier(library, naming)
            self.own = [k for k, r in enumerate(final) if r.material not in library.materials]
            self.base_targets: list[Any] = list(library.names)
        else:
            self.lib_clf = None
            self.own = list(range(len(final)))
            self.base_targets = []
        self.targets: list[Any] = self.base_targets + self.own
        self._cache: dict[int, MaterialClassifier | None] = {}

    def at(self, side: int) -> MaterialClassifier | None:
        """The classifier for crops of ``side`` (None when no prototype crop of that side exists)."""
        if side not in self._cache:
            self._cache[side] = self._fit(side)
        return self._cache[side]

    def _fit(self, side: int) -> MaterialClassifier | None:
        lib_side = self.lib_clf.at(side) if self.lib_clf is not None else None
        if not self.own:
            return lib_side
        crops = sample_scaled_crops(
            self.image,
            [self.final[k] for k in self.own],
            side,
            self.fill.prototype_crops,
            side,
            self.cfg.seed,
            self.scale,
        )
        if not crops.crops:
            return lib_side
        feats = self.enc(crops.crops)
        labels = len(self.base_targets) + crops.owner
        names = [str(t) for t in self.base_targets] + [f"mask {k}" for k in self.own]
        if self.library is not None:
            x, y, sizes = self.library.training_set()
            keep = sizes == side
            feats = np.concatenate([x[keep], feats])
            labels = np.concatenate([y[keep], labels])
            encoder_name = self.library.encoder
        else:
            encoder_name = self.cfg.encoder
        return MaterialClassifier(feats, labels, names, encoder_name, self.naming)


def fill_unsegmented(
    image: np.ndarray,
    final: list[MaskRecord],
    library: Library | None,
    cfg: BoostConfig,
    *,
    fill: FillConfig | None = None,
    naming: NamingConfig | None = None,
    pixel_size_nm: float | None = None,
    encoder: Encoder | None = None,
    classifier: LibraryClassifier | None = None,
) -> list[MaskRecord]:
    """Assign unsegmented pixels whose local texture matches a material with confidence.

    Args:
        image: HxW float image in [0, 1].
        final: disjoint final masks (named by a library, or the booster's numbered materials).
        library: prototypes; None = use the final masks themselves.
        cfg: booster settings (crop size and seed when no library is given).
        fill: completion thresholds.
        naming: classifier settings (method, k, feature columns).
        pixel_size_nm: the image's pixel size in nm, if known.
        encoder: prepared encoder (built from the library's or the booster's encoder if None).
        classifier: prepared classifier of ``library`` (fitted here if None).

    Returns:
        The final masks grown into the gaps they match (still disjoint, same order), plus (with
        ``new_materials``) new masks for library materials found only in the gaps;
        ``extra["filled_pixels"]`` counts the added pixels.
    """
    fill = (fill or FillConfig()).validate()
    naming = (naming or NamingConfig()).validate()
    h, w = image.shape
    owner = np.full((h, w), -1, np.int32)
    for k, rec in enumerate(final):
        owner[rec.decode()] = k
    gap = owner < 0
    if not gap.any() or (library is None and not final):
        return list(final)

    if library is not None:
        side = library.crop_size
        enc, scale = calibrated(
            library.encoder, encoder or build_encoder(library.encoder), scale_for(library.pixel_size_nm, pixel_size_nm)
        )
        rungs = sorted({s for s in library.sizes if s >= fill.min_side_frac * side}, reverse=True) or [side]
    else:
        side, scale = crop_side_for_image(h, w, cfg.crop_size, cfg.min_crop_size), 1.0
        enc = encoder or build_encoder(cfg.encoder, cfg.encoder_weights)
        rungs = [s for s in ladder_sizes(side, cfg.min_crop_size) if s >= fill.min_side_frac * side]
    protos = _Prototypes(image, final, library, cfg, fill, naming, scale, enc, classifier)
    allowed = np.ones(len(protos.targets), bool)
    if library is not None and not fill.new_materials:  # only materials the image's masks have
        allowed[: len(library.names)] = [any(r.material == n for r in final) for n in library.names]

    img_side = int(round(side * scale))
    if img_side > min(h, w):
        return list(final)
    stride = max(2, int(round(img_side * fill.stride_frac)))
    tops, lefts = _grid(h, w, img_side, stride)
    cy, cx = tops + img_side / 2.0, lefts + img_side / 2.0
    cell = _cell_index(h, cy)[:, None] * len(lefts) + _cell_index(w, cx)[None, :]
    n_cells = len(tops) * len(lefts)
    has_gap = np.bincount(cell[gap], minlength=n_cells) > 0
    cell_label = np.full(n_cells, -1)
    for rung in rungs:
        todo = np.flatnonzero(has_gap & (cell_label < 0))
        clf = protos.at(rung)
        if todo.size == 0 or clf is None:
            continue
        r_img = int(round(rung * scale))
        crops = []
        for c in todo:
            top = int(np.clip(round(cy[c // len(lefts)] - r_img / 2.0), 0, h - r_img))
            left = int(np.clip(round(cx[c % len(lefts)] - r_img / 2.0), 0, w - r_img))
            crops.append(resample(image[top : top + r_img, left : left + r_img], rung))
        pred = clf.predict(enc(crops))
        ok = (pred.prob >= fill.min_confidence) & (pred.distance <= fill.max_distance) & allowed[pred.labels]
        cell_label[todo[ok]] = pred.labels[ok]
    return _grow(final, np.where(gap, cell_label[cell], -1), protos.targets)


def _grow(final: list[MaskRecord], assigned: np.ndarray, targets: list[Any]) -> list[MaskRecord]:
    """Add the assigned gap pixels to their masks (targets: a mask index or a material name)."""
    out = [
        MaskRecord(rle=r.rle, bbox=list(r.bbox), area=r.area, score=r.score, material=r.material, extra=dict(r.extra))
        for r in final
    ]
    for label in np.unique(assigned[assigned >= 0]):
        add = assigned == label
        target = targets[int(label)]
        if isinstance(target, str):
            idx = next((k for k, r in enumerate(out) if r.material == target), None)
        else:
            idx = int(target)
        n_add = int(add.sum())
        if idx is None:
            extra = {"filled_pixels": n_add, "from_fill_only": True}
            out.append(
                MaskRecord(rle=encode_rle(add), bbox=bbox_of(add), area=n_add, score=0.0, material=target, extra=extra)
            )
            continue
        m = out[idx].decode() | add
        out[idx] = MaskRecord(
            rle=encode_rle(m),
            bbox=bbox_of(m),
            area=int(m.sum()),
            score=out[idx].score,
            material=out[idx].material,
            extra={**out[idx].extra, "filled_pixels": n_add},
        )
    return out

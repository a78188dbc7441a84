"""Dense completion (``--fill``): give unsegmented pixels to a material when their texture matches it.

A grid of sliding crops (stride = a quarter of the crop side) covers the image; every crop whose
grid cell holds unsegmented pixels is classified against prototypes: the material library, or,
without one, the image's own final masks (crops sampled inside each mask). A cell is assigned
when its crop's class probability is at least ``min_confidence`` and its normalised distance to
that class is at most ``max_distance``; only the cell's unsegmented pixels change. Crops that
straddle an interface (mixed texture) or show an unseen phase fail one of the two tests, so
those gaps stay empty.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from samiam.boost.config import BoostConfig
from samiam.boost.crops import crop_side_for_image
from samiam.errors import ParameterError
from samiam.library.classify import MaterialClassifier, NamingConfig
from samiam.library.features import Encoder, build_encoder, sample_scaled_crops, scale_for
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
        prototype_crops: crops per mask when the image's own masks are the prototypes.
        new_materials: with a library, also create materials that no mask of the image has (off:
            a gap crop that looks most like an absent material stays empty).
    """

    min_confidence: float = 0.6
    max_distance: float = 3.0
    stride_frac: float = 0.25
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
    classifier: MaterialClassifier | None = None,
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
        classifier: prepared classifier fitted on ``library`` (fitted here if None).

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
    if not gap.any():
        return list(final)

    if library is None and not final:
        return []
    protos = _prototypes(image, final, library, cfg, fill, naming, pixel_size_nm, encoder, classifier)
    if protos is None:
        return list(final)
    side, scale, enc, clf, targets = protos

    img_side = int(round(side * scale))
    if img_side > min(h, w):
        return list(final)
    stride = max(2, int(round(img_side * fill.stride_frac)))
    tops, lefts = _grid(h, w, img_side, stride)
    half = img_side / 2.0
    iy = _cell_index(h, tops + half)
    ix = _cell_index(w, lefts + half)
    cell = iy[:, None] * len(lefts) + ix[None, :]
    n_cells = len(tops) * len(lefts)
    todo = np.flatnonzero(np.bincount(cell[gap], minlength=n_cells) > 0)

    crops = []
    for c in todo:
        top, left = tops[c // len(lefts)], lefts[c % len(lefts)]
        crop = image[top : top + img_side, left : left + img_side].astype(np.float32)
        if img_side != side:
            interp = cv2.INTER_AREA if side < img_side else cv2.INTER_CUBIC
            crop = cv2.resize(crop, (side, side), interpolation=interp)
        crops.append(crop)
    pred = clf.predict(enc(crops))
    ok = (pred.prob >= fill.min_confidence) & (pred.distance <= fill.max_distance)
    if library is not None and not fill.new_materials:  # only materials the image's masks have
        present = [
            k for k, t in enumerate(targets) if isinstance(t, int) or any(r.material == t for r in final)
        ]
        ok &= np.isin(pred.labels, present)
    cell_label = np.full(n_cells, -1)
    cell_label[todo[ok]] = pred.labels[ok]

    assigned = np.where(gap, cell_label[cell], -1)
    out = [
        MaskRecord(
            rle=r.rle, bbox=list(r.bbox), area=r.area, score=r.score, material=r.material, extra=dict(r.extra)
        )
        for r in final
    ]
    for label in np.unique(assigned[assigned >= 0]):
        add = assigned == label
        target = targets[int(label)]
        idx = (
            target
            if isinstance(target, int)
            else next((k for k, r in enumerate(out) if r.material == target), None)
        )
        if idx is None:
            out.append(
                MaskRecord(
                    rle=encode_rle(add),
                    bbox=bbox_of(add),
                    area=int(add.sum()),
                    score=0.0,
                    material=target,
                    extra={"filled_pixels": int(add.sum()), "from_fill_only": True},
                )
            )
            continue
        m = out[idx].decode() | add
        out[idx] = MaskRecord(
            rle=encode_rle(m),
            bbox=bbox_of(m),
            area=int(m.sum()),
            score=out[idx].score,
            material=out[idx].material,
            extra={**out[idx].extra, "filled_pixels": int(add.sum())},
        )
    return out


def _prototypes(
    image: np.ndarray,
    final: list[MaskRecord],
    library: Library | None,
    cfg: BoostConfig,
    fill: FillConfig,
    naming: NamingConfig,
    pixel_size_nm: float | None,
    encoder: Encoder | None,
    classifier: MaterialClassifier | None,
) -> tuple[int, float, Encoder, MaterialClassifier, list[Any]] | None:
    """Classifier for the gap crops and what each of its classes fills.

    With a library: the library's materials (target: the mask of that name), plus the image's
    masks the library does not name (``unknown`` groups, target: that mask's index), learnt from
    crops inside them. Without: every final mask (target: its index).

    Returns:
        (crop side at the prototypes' pixel size, image pixels per prototype pixel, encoder,
        classifier, target per class), or None when no prototype crop can be taken.
    """
    h, w = image.shape
    if library is not None:
        side, scale = library.crop_size, scale_for(library.pixel_size_nm, pixel_size_nm)
        enc = encoder or build_encoder(library.encoder)
        own = [k for k, r in enumerate(final) if r.material not in library.materials]
        targets: list[Any] = list(library.names)
        if not own:
            return side, scale, enc, classifier or MaterialClassifier.from_library(library, naming), targets
        x, y = library.training_set()
        encoder_name = library.encoder
    else:
        side, scale = crop_side_for_image(h, w, cfg.crop_size, cfg.min_crop_size), 1.0
        enc = encoder or build_encoder(cfg.encoder, cfg.encoder_weights)
        own = list(range(len(final)))
        targets = []
        x, y = None, np.zeros(0, int)
        encoder_name = cfg.encoder
    crops = sample_scaled_crops(
        image, [final[k] for k in own], side, fill.prototype_crops, cfg.min_crop_size, cfg.seed, scale
    )
    if not crops.crops:
        if library is None:
            return None
        return side, scale, enc, classifier or MaterialClassifier.from_library(library, naming), targets
    feats = enc(crops.crops)
    labels = np.concatenate([y, len(targets) + crops.owner])
    x = feats if x is None else np.concatenate([x, feats])
    names = [str(t) for t in targets] + [f"mask {k}" for k in own]
    targets = targets + own
    return side, scale, enc, MaterialClassifier(x, labels, names, encoder_name, naming), targets

"""Sample K random square crops lying fully inside each mask."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from samiam.masks import MaskRecord


@dataclass
class CropSet:
    """Crops of all masks of one image.

    Attributes:
        crops: list of square float32 arrays (sides may differ between masks).
        owner: (n_crops,) index of the mask each crop came from.
        sizes: (n_masks,) crop side used for each mask (0 = mask too thin for any crop).
        centres: (n_crops, 2) crop centres as (y, x).
    """

    crops: list[np.ndarray]
    owner: np.ndarray
    sizes: np.ndarray
    centres: np.ndarray


def crop_side_for_image(height: int, width: int, requested: int, minimum: int) -> int:
    """Crop side for an image: the requested one, capped at 1/4 of the short side."""
    return int(max(minimum, min(requested, min(height, width) // 4)))


def sample_crops(
    image: np.ndarray,
    records: list[MaskRecord],
    side: int,
    per_mask: int,
    min_side: int,
    seed: int,
) -> CropSet:
    """Sample ``per_mask`` crops of ``side`` x ``side`` fully inside each mask.

    Valid crop centres come from a chessboard distance transform of the mask (a pixel with
    chessboard distance d to the outside is the centre of a (2d-1)-wide square inside it).
    Masks too thin for ``side`` get the largest square that fits, down to ``min_side``;
    thinner masks get no crops.

    Args:
        image: HxW float image.
        records: the masks.
        side: crop side m.
        per_mask: crops per mask (K); fewer if the mask has fewer valid centres.
        min_side: smallest acceptable crop side.
        seed: random seed.

    Returns:
        The crops and their owners.
    """
    rng = np.random.default_rng(seed)
    crops: list[np.ndarray] = []
    owner: list[int] = []
    centres: list[tuple[int, int]] = []
    sizes = np.zeros(len(records), int)
    for i, rec in enumerate(records):
        x, y, w, h = rec.bbox
        if min(w, h) < min_side:
            continue
        m = rec.decode_box().astype(np.uint8)
        # chessboard distance to the nearest outside pixel (pad so the box edge counts as outside)
        dist = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_C, 3)[1:-1, 1:-1]
        half_max = int(dist.max())
        s = min(side, 2 * half_max - 1)
        if s < min_side:
            continue
        half = s // 2
        need = half + 1  # a square of half-width `half` around the centre must be inside
        cy, cx = np.nonzero(dist >= need)
        # keep the crop within the box for even sides
        ok = (cy - half >= 0) & (cx - half >= 0) & (cy - half + s <= h) & (cx - half + s <= w)
        cy, cx = cy[ok], cx[ok]
        if cy.size == 0:
            continue
        pick = rng.choice(cy.size, size=min(per_mask, cy.size), replace=False)
        sizes[i] = s
        for k in pick:
            top, left = y + cy[k] - half, x + cx[k] - half
            crops.append(image[top : top + s, left : left + s].astype(np.float32))
            owner.append(i)
            centres.append((int(top + half), int(left + half)))
    return CropSet(
        crops=crops,
        owner=np.asarray(owner, int),
        sizes=sizes,
        centres=np.asarray(centres, int).reshape(-1, 2),
    )

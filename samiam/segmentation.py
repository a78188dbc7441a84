"""The ``Segmentation`` type: final masks of one image plus the record of the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samiam.masks import MaskRecord


@dataclass
class Segmentation:
    """Masks of one image and how they were made.

    Attributes:
        file: the input file (or name).
        height: image height in pixels.
        width: image width in pixels.
        masks: the mask records (disjoint for boosted results).
        run: the run record (model, checkpoint hash, device, parameters, timings, version).
    """

    file: str
    height: int
    width: int
    masks: list[MaskRecord]
    run: dict[str, Any] = field(default_factory=dict)

    def label_map(self) -> np.ndarray:
        """Return an HxW uint16 map: 0 = unsegmented, k = annotation id (1-based order).

        Where masks overlap (raw results), the later (smaller-index wins is not assumed)
        mask with the higher score wins.
        """
        out = np.zeros((self.height, self.width), np.uint16)
        best = np.full((self.height, self.width), -np.inf, np.float32)
        for k, rec in enumerate(self.masks, start=1):
            m = rec.decode()
            take = m & (rec.score > best)
            out[take] = k
            best[take] = rec.score
        return out

    def to_json(self) -> dict[str, Any]:
        """Return the ``<stem>.masks.json`` document."""
        anns = []
        for k, rec in enumerate(self.masks, start=1):
            ann = {"id": k, **rec.to_dict(rle_key="segmentation")}
            ann["score"] = round(ann["score"], 6)
            if not rec.extra:
                del ann["extra"]
            anns.append(ann)
        return {
            "image": {"file": self.file, "height": self.height, "width": self.width},
            "annotations": anns,
            "run": self.run,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Segmentation:
        """Rebuild from a ``<stem>.masks.json`` document (see ``to_json``)."""
        img = doc["image"]
        masks = [MaskRecord.from_dict(a, rle_key="segmentation") for a in doc["annotations"]]
        return cls(
            file=img["file"],
            height=int(img["height"]),
            width=int(img["width"]),
            masks=masks,
            run=doc.get("run", {}),
        )

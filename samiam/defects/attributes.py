"""Named STM defect classes from physical attributes: the names say the sign, the amplitude and the size.

STM defect class names such as ``Large Bright Peak`` or ``Small Dim Trough`` describe three
physical properties of a defect. When every example class name is made of such words (one per
attribute, the same attributes for every class), each attribute is decided on its own:

- *sign* (``Peak``/``Trough``): the sign of the defect's contrast (mean height inside minus the
  median of a ring around it);
- *amplitude* (``Bright``/``Dim``): log of |contrast| in units of the image's own white-noise
  sigma (``calibrate.noise_level``);
- *size* (``Large``/``Small``): log of sqrt(area) in nm when every image says its pixel size,
  else in units of the image's feature scale (``calibrate.feature_scale``).

The threshold of the amplitude and of the size is the midpoint between the mean descriptor of the
examples with each word, so every example of the class set informs each attribute (with one
example per class, four examples per word instead of one per class). A defect whose attributes
make a combination that no example class has (e.g. a trough when every example is a peak) is
``unknown``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from samiam.errors import ParameterError

# attribute -> (word of the high side, word of the low side); the descriptor column is the index
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "sign": ("peak", "trough"),
    "amplitude": ("bright", "dim"),
    "size": ("large", "small"),
}
_ORDER = tuple(ATTRIBUTES)
_WORD = {w: (a, i == 0) for a, ws in ATTRIBUTES.items() for i, w in enumerate(ws)}


def physical_descriptors(
    contrast: np.ndarray, area: np.ndarray, noise: float, pixel_nm: float | None, feature_scale: float
) -> np.ndarray:
    """(N, 3) per-defect descriptors: sign of the contrast, log amplitude / noise, log size.

    Args:
        contrast: (N,) contrast of each defect (normalised heights).
        area: (N,) area of each defect in px.
        noise: the image's white-noise sigma, in the units of ``contrast``.
        pixel_nm: pixel size in nm, or None (size in units of ``feature_scale``).
        feature_scale: the image's feature scale in px (used when ``pixel_nm`` is None).

    Returns:
        float64 (N, 3): sign, log(|contrast| / noise), log(sqrt(area) x unit).
    """
    c = np.asarray(contrast, np.float64).ravel()
    a = np.asarray(area, np.float64).ravel()
    if c.shape != a.shape:
        raise ParameterError(f"expected contrast and area of one length, got {c.shape} and {a.shape}")
    if not (noise > 0 and feature_scale > 0) or (pixel_nm is not None and not pixel_nm > 0):
        raise ParameterError(
            f"expected noise, feature scale and pixel size > 0, got {noise}, {feature_scale} and {pixel_nm}"
        )
    unit = pixel_nm if pixel_nm is not None else 1.0 / feature_scale
    amp = np.log(np.abs(c) / noise + 1e-3)
    size = np.log(np.sqrt(np.maximum(a, 1.0)) * unit)
    return np.stack([np.sign(c), amp, size], 1)


def name_attributes(names: list[str]) -> dict[str, dict[str, bool]] | None:
    """Per class name, its attribute values (True = the high word), or None if the names do not
    all consist of one attribute word per attribute, over the same attributes.

    Words are split on spaces, ``_`` and ``-`` and compared case-insensitively.
    """
    out: dict[str, dict[str, bool]] = {}
    for name in names:
        words = [w for w in re.split(r"[\s_\-]+", name.strip().lower()) if w]
        if not words or any(w not in _WORD for w in words):
            return None
        vals = dict(_WORD[w] for w in words)
        if len(vals) != len(words):  # two words of one attribute
            return None
        out[name] = vals
    keys = {tuple(sorted(v)) for v in out.values()}
    return out if len(keys) == 1 else None


@dataclass
class AttributeRule:
    """How to name a defect from its physical descriptors.

    Attributes:
        attributes: the attributes the names use (in descriptor-column order).
        thresholds: per attribute, the descriptor value above which it takes its high word.
        classes: (attribute values) -> class name, for the combinations the examples have.
        centres: (K, 3) mean descriptors of each class's examples (for ``name_distance``).
        names: class names, the rows of ``centres``.
        size_unit: ``"nm"`` or ``"feature scale"``.
    """

    attributes: list[str]
    thresholds: dict[str, float]
    classes: dict[tuple[bool, ...], str]
    centres: np.ndarray
    names: list[str]
    size_unit: str

    def to_dict(self) -> dict:
        return {
            "attributes": self.attributes,
            "thresholds": {k: round(float(v), 4) for k, v in self.thresholds.items()},
            "size_unit": self.size_unit,
        }


def build_attribute_rule(descriptors: np.ndarray, labels: list[str], size_unit: str) -> AttributeRule | None:
    """The attribute rule of the examples, or None when their names are not attribute words.

    The sign is decided by the sign of the contrast; the amplitude and the size by the midpoint
    of the examples' mean descriptor for each word. An amplitude or size word that every example
    shares tells no class apart and is not used; if no attribute is left, the result is None.

    Args:
        descriptors: (N, 3) ``physical_descriptors`` of the examples.
        labels: N class names.
        size_unit: unit of the size column (for the record).

    Returns:
        The rule, or None.
    """
    x = np.asarray(descriptors, np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) != len(labels):
        raise ParameterError(f"expected (N, 3) descriptors and N labels, got {x.shape} and {len(labels)}")
    attrs = name_attributes(sorted(set(labels)))
    if attrs is None:
        return None
    thresholds = {}
    for a in (a for a in _ORDER if a in next(iter(attrs.values()))):
        col = _ORDER.index(a)
        high = np.array([attrs[lab][a] for lab in labels])
        if a == "sign":  # physical: no threshold to learn
            thresholds[a] = 0.0
        elif high.all() or not high.any():  # one word only: it tells no class apart
            continue
        else:
            thresholds[a] = float((x[high, col].mean() + x[~high, col].mean()) / 2)
    used = list(thresholds)
    if not used:
        return None
    names = sorted(attrs)
    lab = np.array(labels)
    centres = np.stack([x[lab == n].mean(0) for n in names])
    classes = {tuple(attrs[n][a] for a in used): n for n in names}
    return AttributeRule(used, thresholds, classes, centres, names, size_unit)


def apply_attribute_rule(descriptors: np.ndarray, rule: AttributeRule, unknown: str) -> tuple[list[str], np.ndarray]:
    """Name each defect by its attributes (``unknown`` for a combination no example class has).

    Returns:
        (names, (N,) distance in descriptor space to the nearest class's mean example descriptors).
    """
    x = np.asarray(descriptors, np.float64).reshape(-1, 3)
    if len(x) == 0:
        return [], np.zeros(0)
    cols = [_ORDER.index(a) for a in rule.attributes]
    high = x[:, cols] > np.array([rule.thresholds[a] for a in rule.attributes])
    names = [rule.classes.get(tuple(bool(v) for v in row), unknown) for row in high]
    dist = np.linalg.norm(x[:, None] - rule.centres[None], axis=2).min(1)
    return names, dist

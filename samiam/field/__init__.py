"""The dense material field: texture descriptors on a grid over the whole image, the materials
they form (with an automatic number of materials), and a full-resolution label map.

Modules:
    lattice: the image's own lattice period (global spectrum) → window size.
    descriptors: windowed log-power spectra reduced to rotation-invariant descriptors + intensity.
    cluster: materials from the descriptors, with the number chosen by density-valley merging.
    labelmap: posterior on the grid → full-resolution probabilities.
    build: the whole field in one call (``material_field``).
"""

from samiam.field.build import FieldConfig, MaterialField, material_field

__all__ = ["FieldConfig", "MaterialField", "material_field"]

"""STEM point defects against the bulk lattice: lattice, bulk, columns, residual, instances, classes.

``detect_stem`` finds defects in one image; ``train_stem_model`` fits classes over many;
``analyse_stem`` classifies one image's defects; ``outputs.write_stem_outputs`` writes them.
"""

from samiam.defects.stem.pipeline import StemDetection, StemParams, detect_stem
from samiam.defects.stem.run import StemResult, analyse_stem, train_stem_model

__all__ = ["StemDetection", "StemParams", "StemResult", "analyse_stem", "detect_stem", "train_stem_model"]

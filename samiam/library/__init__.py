"""Few-shot named materials: learn a material library from labelled examples, name masks with it,
and complete unsegmented pixels by texture (see docs/few-shot.md)."""

from samiam.library.classify import LibraryClassifier, MaterialClassifier, NamingConfig, name_masks
from samiam.library.fill import FillConfig, fill_unsegmented
from samiam.library.learn import (
    Example,
    LearnConfig,
    example_from_label_map,
    example_from_masks_json,
    examples_from_labelstudio,
    learn_examples,
    read_labelstudio_export,
    update_library_from_tasks,
)
from samiam.library.segment_hook import boost_with_library
from samiam.library.store import UNKNOWN, Library, MaterialEntry, load_library, pixel_size_nm, save_library

__all__ = [
    "UNKNOWN",
    "Example",
    "FillConfig",
    "LearnConfig",
    "Library",
    "LibraryClassifier",
    "MaterialClassifier",
    "MaterialEntry",
    "NamingConfig",
    "boost_with_library",
    "example_from_label_map",
    "example_from_masks_json",
    "examples_from_labelstudio",
    "fill_unsegmented",
    "learn_examples",
    "load_library",
    "name_masks",
    "pixel_size_nm",
    "read_labelstudio_export",
    "save_library",
    "update_library_from_tasks",
]

"""The declared public API: ``samiam.__all__`` is pinned, every name resolves, and ``import samiam`` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import samiam

PUBLIC = {
    "__version__",
    "BenchmarkOptions",
    "BoostConfig",
    "DefectParams",
    "FieldConfig",
    "GeneratorConfig",
    "LoadedModel",
    "MaterialField",
    "Micrograph",
    "SegmentConfig",
    "Segmentation",
    "boost_segmentation",
    "load_defect_model",
    "load_model",
    "material_field",
    "read_micrograph",
    "read_stm",
    "run_benchmark",
    "run_defects",
    "score_image",
    "segment_micrograph",
    "train_defect_model",
}


def test_public_names_are_pinned() -> None:
    assert set(samiam.__all__) == PUBLIC  # a change here is an API change: update docs and this list


@pytest.mark.parametrize("name", sorted(PUBLIC - {"__version__"}))
def test_every_public_name_resolves(name: str) -> None:
    obj = getattr(samiam, name)
    assert obj.__name__ in (name, "load_model")  # load_defect_model is defects.store.load_model
    assert name in dir(samiam)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'segment'"):
        samiam.segment  # noqa: B018


def test_import_does_not_load_torch() -> None:
    code = "import sys, samiam; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_api_maps_two_lattices_with_the_field(two_lattice_image) -> None:
    img, lab = two_lattice_image
    field = samiam.material_field(img, 2)
    assert field.n_materials == 2 and field.labels.shape == img.shape
    score = samiam.score_image([field.labels == i for i in range(field.n_materials)], lab).summary()
    assert score["miou"] > 0.8

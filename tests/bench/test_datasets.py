"""Dataset loaders: the three layouts, and one clear problem per bad file while the rest loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from samiam.bench.datasets import material_of, open_dataset, read_label_map
from samiam.errors import InputError, ParameterError

from .conftest import build_folder_dataset, shared_or_skip, synthetic_labelled, write_png


def test_folder_layout_with_meta(folder_dataset: Path):
    ds = open_dataset(folder_dataset)
    assert ds.layout == "folders" and len(ds) == 3
    samples = list(ds)
    assert ds.problems == []
    assert [s.stem for s in samples] == ["img0", "img1", "img2"]
    s0 = samples[0]
    _, want = synthetic_labelled(0, layout="stack")
    np.testing.assert_array_equal(s0.labels, want)
    assert s0.names == {1: "Ge", 2: "SrTiO3", 3: "vacuum"}
    assert s0.groups == {"layout": "stack"} and samples[1].groups == {"layout": "particle"}
    assert s0.micrograph is not None and s0.micrograph.image.shape == (64, 80)
    assert open_dataset(folder_dataset, limit=2).entries[-1].stem == "img1"


def test_bad_folder_reports_each_problem_and_keeps_the_rest(tmp_path: Path):
    root = build_folder_dataset(tmp_path / "set", n=6)
    (root / "labels" / "img1.png").unlink()  # missing label
    image, labels = synthetic_labelled(2, 32, 32)
    write_png(root / "labels" / "img2.png", labels.astype(np.uint8))  # size mismatch
    (root / "labels" / "img3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # corrupt label
    (root / "images" / "img4.png").write_bytes(b"not an image")  # corrupt image
    write_png(root / "labels" / "orphan.png", labels.astype(np.uint8))  # label without image
    ds = open_dataset(root)
    stems = [s.stem for s in ds]
    assert stems == ["img0", "img5"]
    assert len(ds.problems) == 5, ds.problems
    text = "\n".join(ds.problems)
    for needle in (
        "img1.png: no label map",
        "img2.png: label map is 32x32 pixels but image",
        "img3.png: cannot read label map",
        "img4.png: not a decodable PNG",
        "orphan.png: label map without an image",
    ):
        assert needle in text, needle


def test_limit_applies_to_broken_items_too(tmp_path: Path):
    root = build_folder_dataset(tmp_path / "set", n=3)
    (root / "labels" / "img2.png").unlink()
    ds = open_dataset(root, limit=2)
    assert [s.stem for s in ds] == ["img0", "img1"] and ds.problems == []
    ds = open_dataset(root, limit=3)
    assert len(list(ds)) == 2 and len(ds.problems) == 1


def test_unusable_dataset_paths_raise_one_clear_error(tmp_path: Path):
    with pytest.raises(InputError, match="no such dataset"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "labels").mkdir()
    with pytest.raises(InputError, match="images: no images"):
        open_dataset(tmp_path / "empty")
    (tmp_path / "nolabels" / "images").mkdir(parents=True)
    with pytest.raises(InputError, match="no labels/ folder"):
        open_dataset(tmp_path / "nolabels")
    (tmp_path / "other").mkdir()
    with pytest.raises(InputError, match="not a labelled dataset"):
        open_dataset(tmp_path / "other")
    with pytest.raises(ParameterError):
        open_dataset(build_folder_dataset(tmp_path / "ok", n=1), limit=0)


def test_label_map_reader(tmp_path: Path):
    labels = np.arange(12, dtype=np.uint16).reshape(3, 4)
    np.save(tmp_path / "a.npy", labels.astype(np.float32))
    np.testing.assert_array_equal(read_label_map(tmp_path / "a.npy"), labels)
    np.save(tmp_path / "b.npy", labels / 2)
    with pytest.raises(InputError, match="whole numbers"):
        read_label_map(tmp_path / "b.npy")
    write_png(tmp_path / "c.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="single-channel"):
        read_label_map(tmp_path / "c.png")
    write_png(tmp_path / "d.png", labels)
    assert read_label_map(tmp_path / "d.png").dtype == np.int32
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_label_map(tmp_path / "e.png")


def coco_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def test_coco_instances(tmp_path: Path):
    h, w = 20, 30
    image, _ = synthetic_labelled(0, h, w)
    write_png(tmp_path / "images" / "a.png", image)
    left = np.zeros((h, w), bool)
    left[:, :10] = True
    overlap = np.zeros((h, w), bool)
    overlap[:, 8:20] = True  # columns 8-9 claimed by both categories -> ignore
    crowd = np.zeros((h, w), bool)
    crowd[:5, 25:] = True
    doc = {
        "images": [
            {"id": 7, "file_name": "a.png", "height": h, "width": w, "difficulty": "hard"},
            {"id": 8, "file_name": "missing.png", "height": h, "width": w},
        ],
        "categories": [{"id": 3, "name": "Ge"}, {"id": 9, "name": "vacuum", "difficulty": "easy"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "segmentation": coco_rle(left), "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 9, "segmentation": coco_rle(overlap), "iscrowd": 0},
            # polygon covering columns 20-29 (pycocotools rasterises the polygon's interior)
            {
                "id": 3,
                "image_id": 7,
                "category_id": 9,
                "segmentation": [[20, 0, 30, 0, 30, 20, 20, 20]],
                "iscrowd": 0,
            },
            {"id": 4, "image_id": 7, "category_id": 9, "segmentation": coco_rle(crowd), "iscrowd": 1},
            {"id": 5, "image_id": 8, "category_id": 3, "segmentation": coco_rle(left), "iscrowd": 0},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    ds = open_dataset(path)
    assert ds.layout == "coco"
    samples = list(ds)
    assert [s.stem for s in samples] == ["a"]
    assert len(ds.problems) == 1 and "no image file found for 'missing'" in ds.problems[0]
    s = samples[0]
    assert s.names == {1: "Ge", 2: "vacuum"}
    assert (s.labels[:, :8] == 1).all() and (s.labels[:, 8:10] == 0).all()
    assert (s.labels[5:, 10:20] == 2).all() and (s.labels[:5, 25:] == 0).all()
    assert s.difficulty == {1: "hard", 2: "easy"} and s.groups == {"difficulty": "hard"}
    # without images, both load
    assert [s.stem for s in open_dataset(path, read_images=False)] == ["a", "missing"]


def test_coco_errors(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a COCO instances JSON"):
        open_dataset(bad)
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "height": 4, "width": 4}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "segmentation": []}],
    }
    bad.write_text(json.dumps(doc))
    ds = open_dataset(bad, read_images=False)
    assert list(ds) == [] and "annotation 1 of image 'a.png' is unusable" in ds.problems[0]


def build_samiam_label_set(root: Path) -> None:
    """labels_merged/<image>/<image>-tag-<Material>-<k>.png, images in images/ or inside the folder."""
    h, w = 24, 32
    for name, where in (("stem_a", "images"), ("stem_b", "inner")):
        image, _ = synthetic_labelled(1, h, w)
        folder = root / "labels_merged" / name
        write_png((root / "images" if where == "images" else folder) / f"{name}.png", image)
        masks = {k: np.zeros((h, w), np.uint8) for k in ("Ge-1", "Ge-2", "SrTiO3-1", "Vac-1")}
        masks["Ge-1"][:8, :16] = 255
        masks["Ge-2"][:8, 16:] = 1
        masks["SrTiO3-1"][8:16] = 255
        masks["Vac-1"][15:] = 255  # row 15 is also SrTiO3 -> ignore
        for tag, m in masks.items():
            write_png(folder / f"{name}_merged-tag-{tag}.png", m)


def test_samiam_label_set_layout(tmp_path: Path):
    build_samiam_label_set(tmp_path)
    (tmp_path / "labels_merged" / "stem_c").mkdir()  # folder without masks
    ds = open_dataset(tmp_path)
    assert ds.layout == "samiam-labels"
    samples = list(ds)
    assert [s.stem for s in samples] == ["stem_a", "stem_b"]
    assert len(ds.problems) == 1 and "stem_c: no '...-tag-<Material>-<k>.png' mask files" in ds.problems[0]
    a, b = samples
    assert a.image_path == tmp_path / "images" / "stem_a.png"
    assert b.image_path == tmp_path / "labels_merged" / "stem_b" / "stem_b.png"
    assert a.names == {1: "Ge", 2: "SrTiO3", 3: "Vac"}
    assert (a.labels[:8] == 1).all()  # both Ge masks merge into one region
    assert (a.labels[8:15] == 2).all() and (a.labels[15] == 0).all() and (a.labels[16:] == 3).all()


def test_samiam_label_set_mask_size_mismatch(tmp_path: Path):
    build_samiam_label_set(tmp_path)
    bad = tmp_path / "labels_merged" / "stem_a" / "stem_a_merged-tag-Ge-3.png"
    write_png(bad, np.zeros((10, 10), np.uint8))
    ds = open_dataset(tmp_path)
    assert [s.stem for s in ds] == ["stem_b"]
    assert len(ds.problems) == 1 and "Ge-3.png: mask is 10x10 pixels" in ds.problems[0]


def test_material_names_from_file_names():
    assert material_of(Path("x_merged-tag-SrTiO3-12.png")) == "SrTiO3"
    assert material_of(Path("a-b-tag-Pt-C-1.png")) == "Pt-C"
    assert material_of(Path("img-tag-Vac.png")) == "Vac"
    assert material_of(Path("image.png")) is None


@pytest.mark.shared
def test_shared_stem_sim_loads():
    root = shared_or_skip()
    ds = open_dataset(root, limit=2)
    samples = list(ds)
    assert ds.problems == [] and len(samples) == 2
    assert samples[0].labels.shape == (1024, 1024)
    assert samples[0].groups["layout"] in ("stack", "particle")
    assert set(samples[0].names.values()) >= {"vacuum"}

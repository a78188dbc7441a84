"""Few-shot named defect classes: examples -> prototypes -> names, on images the tests make."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from samiam.cli.app import app
from samiam.defects import load_model, run_defects
from samiam.defects.attributes import apply_attribute_rule, build_attribute_rule, name_attributes, physical_descriptors
from samiam.defects.naming import (
    UNKNOWN,
    assign_names,
    build_prototypes,
    check_examples,
    read_examples,
)
from samiam.defects.pipeline import learn_prototypes
from samiam.errors import InputError
from samiam.io.micrograph import micrograph_from_array
from samiam.synth.stm import synthetic_stm

runner = CliRunner()


def _gauss(shape, x, y, s, amp):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s * s))


def _hillocks(seed: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """An unseen kind: wide, tall mounds (sigma 6 px, 5x the adatoms' height) on the same lattice."""
    z = synthetic_stm(160, n_defects=0, step=False, seed=seed).heights.astype(np.float64)
    spots = [(40.0, 40.0), (120.0, 50.0), (70.0, 120.0)]
    for x, y in spots:
        z += _gauss(z.shape, x, y, 6.0, 0.4)
    return z.astype(np.float32), spots


def _box(x, y, half=5.0):
    return (x - half, y - half, 2 * half, 2 * half)


def _two_kinds(seed):
    return synthetic_stm(160, n_defects=6, kinds=("adatom", "vacancy"), step=False, seed=seed)


def test_prototypes_name_the_nearest_class_and_far_points_unknown():
    feats = np.array([[0.0, 0.0], [4.0, 0.0]])
    protos = build_prototypes(feats, ["a", "b"])
    assert protos.names == ["a", "b"] and protos.threshold == pytest.approx(4.0)
    names, dist = assign_names(np.array([[0.5, 0.3], [3.6, -0.2], [2.0, 9.0]]), protos)
    assert names == ["a", "b", UNKNOWN]
    assert dist[0] == pytest.approx(np.hypot(0.5, 0.3))


def test_within_class_spread_widens_the_unknown_threshold():
    feats = np.array([[0.0, 0.0], [0.0, 6.0], [40.0, 0.0], [40.0, 6.0]])
    protos = build_prototypes(feats, ["a", "a", "b", "b"])
    assert protos.n_examples == [2, 2]
    assert protos.threshold == pytest.approx(40.0)  # the classes are far apart: that bounds it
    one = build_prototypes(np.array([[0.0], [1.0], [2.0]]), ["a", "a", "a"])
    assert 1.5 < one.threshold < 4.0  # one class: twice its leave-one-out spread


def test_synthetic_kinds_are_named_from_one_example_each_and_an_unseen_kind_is_unknown(tiny_model_dir, tmp_path):
    model = load_model(tiny_model_dir)
    ex = _two_kinds(7)
    np.save(tmp_path / "examples.npy", ex.heights)
    rows = ["label,x,y,width,height,filename"]
    for kind in ("adatom", "vacancy"):  # one example of each kind
        x, y = ex.centres[ex.kinds.index(kind)]
        rows.append(f"{kind},{x - 5:.1f},{y - 5:.1f},10,10,examples.npy")
    (tmp_path / "ex.csv").write_text("\n".join(rows) + "\n")
    examples = read_examples(tmp_path / "ex.csv")
    assert [e.label for e in examples] == ["adatom", "vacancy"]
    protos = learn_prototypes(examples, model)
    named = {}
    for seed in (8, 9):
        im = _two_kinds(seed)
        res = run_defects(micrograph_from_array(im.heights, "new.npy"), model, prototypes=protos)
        cents = np.array([d.centroid for d in res.detection.instances]).reshape(-1, 2)
        for (x, y), kind in zip(im.centres, im.kinds, strict=True):
            d = np.hypot(cents[:, 0] - x, cents[:, 1] - y)
            if len(d) and d.min() <= 4:
                named.setdefault(kind, []).append(res.detection.instances[int(d.argmin())].name)
    assert len(named.get("adatom", [])) >= 3 and len(named.get("vacancy", [])) >= 3, named
    assert set(named["adatom"]) == {"adatom"} and set(named["vacancy"]) == {"vacancy"}, named
    img, spots = _hillocks(10)
    res = run_defects(micrograph_from_array(img, "hillocks.npy"), model, prototypes=protos)
    cents = np.array([d.centroid for d in res.detection.instances]).reshape(-1, 2)
    near = [[i for i, c in zip(res.detection.instances, cents, strict=True) if np.hypot(*(c - s)) <= 10] for s in spots]
    assert all(near), [len(n) for n in near]  # every mound is found (maybe as more than one defect)
    names = [(i.name, i.name_distance) for n in near for i in n]
    assert all(n == UNKNOWN for n, _ in names), (names, protos.threshold)


def _run(args):
    res = runner.invoke(app, ["defects", "run", *args])
    return res, [line for line in res.output.splitlines() if line.startswith("error:")]


def _bad_csv(tmp_path, text):
    p = tmp_path / "ex.csv"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, message",
    [
        ("label,x,y,w,h,filename\nbump,1,1,5,5,{img}\n", "missing column(s) width, height"),
        ("label,x,y,width,height,filename\nbump,1,1,5,5,nowhere.npy\n", "unknown filename 'nowhere.npy'"),
        ("label,x,y,width,height,filename\nbump,1,1,5,5,{other}\n", "names none of the 1 given image(s)"),
    ],
)
def test_bad_classes_file_gives_one_clear_line(tiny_model_dir, npy_images, tmp_path, text, message):
    csv_path = _bad_csv(tmp_path, text.format(img=npy_images[0], other=npy_images[1]))
    out = tmp_path / "out"
    res, errors = _run([str(npy_images[0]), "--model", str(tiny_model_dir), "-o", str(out), "--classes", str(csv_path)])
    assert res.exit_code != 0
    assert len(errors) == 1 and message in errors[0] and "ex.csv" in errors[0], res.output
    assert "Traceback" not in res.output
    assert not out.exists() or not list(out.iterdir())


def test_cli_classes_writes_names_to_the_json(tiny_model_dir, tmp_path):
    im = _two_kinds(7)
    np.save(tmp_path / "a.npy", im.heights)
    rows = "".join(
        f"{kind},{x - 5},{y - 5},10,10,a.npy\n" for (x, y), kind in zip(im.centres[:3], im.kinds[:3], strict=True)
    )
    (tmp_path / "ex.csv").write_text("label,x,y,width,height,filename\n" + rows)
    out = tmp_path / "out"
    res, errors = _run(
        [str(tmp_path / "a.npy"), "--model", str(tiny_model_dir), "-o", str(out), "--classes", str(tmp_path / "ex.csv")]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "a.defects.json").read_text())
    assert doc["instances"] and all({"name", "name_distance"} <= set(i) for i in doc["instances"])
    assert doc["run"]["naming"]["names"] == sorted(set(im.kinds[:3]))
    assert any(f"{k}:" in res.output for k in im.kinds[:3])


def test_label_studio_rectangles_are_examples(tmp_path, npy_images):
    task = {
        "id": 7,
        "data": {"image": f"/data/upload/3/0a1b2c3d-{npy_images[0].name}"},
        "annotations": [
            {
                "result": [
                    {
                        "type": "rectanglelabels",
                        "original_width": 128,
                        "original_height": 128,
                        "value": {"x": 25.0, "y": 50.0, "width": 10.0, "height": 5.0, "rectanglelabels": ["bump"]},
                    }
                ]
            }
        ],
    }
    export = npy_images[0].parent / "export.json"
    export.write_text(json.dumps([task]))
    (ex,) = read_examples(export)
    assert ex.label == "bump" and ex.file == npy_images[0]
    assert ex.box == pytest.approx((32.0, 64.0, 12.8, 6.4))
    check_examples([ex], npy_images, str(export))
    with pytest.raises(InputError, match="no rectangle labels"):
        task["annotations"][0]["result"][0]["type"] = "brushlabels"
        export.write_text(json.dumps([task]))
        read_examples(export)


def test_attribute_words_are_parsed_only_when_every_name_is_made_of_them():
    got = name_attributes(["Large Bright Peak", "small_dim-trough"])
    assert got == {
        "Large Bright Peak": {"size": True, "amplitude": True, "sign": True},
        "small_dim-trough": {"size": False, "amplitude": False, "sign": False},
    }
    assert name_attributes(["adatom", "vacancy"]) is None
    assert name_attributes(["Large Peak", "Bright Trough"]) is None  # different attributes
    assert name_attributes(["Large Small"]) is None  # two words of one attribute


def test_attribute_rule_names_each_attribute_and_an_unseen_combination_unknown():
    # columns: sign, log amplitude / noise, log size; one example per class
    ex = np.array([[1.0, 2.0, 0.0], [-1.0, 0.0, 0.0]])
    rule = build_attribute_rule(ex, ["Bright Peak", "Dim Trough"], "nm")
    assert rule is not None and rule.thresholds == {"sign": 0.0, "amplitude": pytest.approx(1.0)}
    names, dist = apply_attribute_rule(np.array([[1.0, 1.8, 3.0], [-1.0, 0.2, -2.0], [-1.0, 2.5, 0.0]]), rule, UNKNOWN)
    assert names == ["Bright Peak", "Dim Trough", UNKNOWN]
    assert dist[0] == pytest.approx(np.hypot(0.2, 3.0))
    same = build_attribute_rule(ex, ["Bright Peak", "Bright Trough"], "nm")
    assert same.attributes == ["sign"]  # every example is bright: the amplitude tells none apart
    assert apply_attribute_rule(np.array([[-1.0, -5.0, 0.0]]), same, UNKNOWN)[0] == ["Bright Trough"]
    assert build_attribute_rule(ex, ["adatom", "vacancy"], "nm") is None
    d = physical_descriptors(np.array([0.5, -2.0]), np.array([16.0, 64.0]), 0.25, 0.5, 3.0)
    np.testing.assert_allclose(d[:, 0], [1, -1])
    np.testing.assert_allclose(d[:, 1:], np.log([[2.0 + 1e-3, 2.0], [8.0 + 1e-3, 4.0]]), rtol=1e-6)


def test_attribute_names_from_one_example_each_and_an_unseen_kind_is_unknown(tiny_model_dir, tmp_path):
    model = load_model(tiny_model_dir)
    ex = _two_kinds(7)
    hill, spots = _hillocks(12)
    np.save(tmp_path / "adatoms.npy", ex.heights)
    np.save(tmp_path / "mounds.npy", hill)
    x, y = ex.centres[ex.kinds.index("adatom")]
    rows = ["label,x,y,width,height,filename", f"Small Peak,{x - 5:.1f},{y - 5:.1f},10,10,adatoms.npy"]
    rows.append(f"Large Peak,{spots[0][0] - 8:.1f},{spots[0][1] - 8:.1f},16,16,mounds.npy")
    (tmp_path / "ex.csv").write_text("\n".join(rows) + "\n")

    def read(path):  # the files say their pixel size (0.1 nm): sizes are compared in nm
        return micrograph_from_array(np.load(path), str(path), pixel_size=0.1, pixel_unit="nm")

    protos = learn_prototypes(read_examples(tmp_path / "ex.csv"), model, read=read)
    assert protos.attributes is not None and protos.attributes.size_unit == "nm"
    assert protos.to_dict()["method"] == "attributes"
    named = {}
    for seed in (8, 9):
        im = _two_kinds(seed)
        res = run_defects(
            micrograph_from_array(im.heights, "new.npy", pixel_size=0.1, pixel_unit="nm"), model, prototypes=protos
        )
        cents = np.array([d.centroid for d in res.detection.instances]).reshape(-1, 2)
        for (x, y), kind in zip(im.centres, im.kinds, strict=True):
            d = np.hypot(cents[:, 0] - x, cents[:, 1] - y)
            if len(d) and d.min() <= 4:
                named.setdefault(kind, []).append(res.detection.instances[int(d.argmin())].name)
    assert len(named.get("adatom", [])) >= 3 and len(named.get("vacancy", [])) >= 3, named
    assert set(named["adatom"]) == {"Small Peak"}, named
    assert set(named["vacancy"]) == {UNKNOWN}, named  # a trough: no example class is one
    img, spots = _hillocks(13)
    res = run_defects(
        micrograph_from_array(img, "mounds2.npy", pixel_size=1e-10, pixel_unit="m"), model, prototypes=protos
    )
    cents = np.array([d.centroid for d in res.detection.instances]).reshape(-1, 2)
    nearest = [res.detection.instances[int(np.hypot(*(cents - s).T).argmin())].name for s in spots]
    assert nearest == ["Large Peak"] * len(spots), nearest
    with pytest.raises(InputError, match="no-size.npy: .*pixel size"):
        run_defects(micrograph_from_array(img, "no-size.npy"), model, prototypes=protos)

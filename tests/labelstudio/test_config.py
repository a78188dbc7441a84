"""Parsing of the labelling config: image tags, controls, labels, and the errors users meet."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from samiam.cli.app import app
from samiam.labelstudio.config import micrograph_label_config, parse_label_config
from samiam.labelstudio.errors import RequestError

from .conftest import LABEL_CONFIG


def test_parses_image_controls_and_labels_in_order() -> None:
    cfg = parse_label_config(LABEL_CONFIG)
    assert [(t.name, t.value_key) for t in cfg.images] == [("image", "image")]
    assert [(c.name, c.type) for c in cfg.controls] == [
        ("mask", "brushlabels"),
        ("point", "keypointlabels"),
        ("box", "rectanglelabels"),
    ]
    assert cfg.brush_for().labels == ("SrTiO3", "Ge")
    assert cfg.brush_for("image", "Ge").name == "mask"


def test_picks_the_brush_control_that_has_the_label() -> None:
    xml = """<View><Image name="img" value="$url"/>
      <BrushLabels name="phases" toName="img"><Label value="A"/><Label value="B"/></BrushLabels>
      <BrushLabels name="defects" toName="img"><Label value="vacancy"/></BrushLabels></View>"""
    cfg = parse_label_config(xml)
    assert cfg.image("img").value_key == "url"
    assert cfg.brush_for("img", "vacancy").name == "defects"
    assert cfg.brush_for("img").name == "phases"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<View><Image name='i' value='$image'/>", "not well-formed XML"),
        ("<View><Text name='t' value='$text'/></View>", "no <Image> tag"),
        ("<View><Image name='i' value='image'/></View>", "must take its image from the task data"),
    ],
)
def test_bad_configs_are_request_errors(xml: str, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse_label_config(xml)


def test_missing_brush_and_unknown_label_messages() -> None:
    cfg = parse_label_config(
        "<View><Image name='i' value='$image'/><RectangleLabels name='r' toName='i'><Label value='A'/>"
        "</RectangleLabels></View>"
    )
    with pytest.raises(RequestError, match="no <BrushLabels>"):
        cfg.brush_for()
    with pytest.raises(RequestError, match="unknown label 'Si'.*SrTiO3, Ge"):
        parse_label_config(LABEL_CONFIG).brush_for("image", "Si")
    with pytest.raises(RequestError, match='no <Image name="other">'):
        cfg.image("other")


def test_micrograph_config_is_consistent_and_documented() -> None:
    xml = micrograph_label_config(("Ge", "Si & O", "vacuum"))
    cfg = parse_label_config(xml)
    kinds = {c.name: (c.type, c.labels) for c in cfg.controls}
    assert kinds == {
        "material": ("brushlabels", ("Ge", "Si & O", "vacuum")),
        "point": ("keypointlabels", ("Ge", "Si & O", "vacuum")),
        "box": ("rectanglelabels", ("Ge", "Si & O", "vacuum")),
    }
    with pytest.raises(ValueError, match="distinct"):
        micrograph_label_config(("Ge", "Ge"))
    docs = Path(__file__).resolve().parents[2] / "docs" / "labelstudio.md"
    assert micrograph_label_config() in docs.read_text(), "docs/labelstudio.md must show the default config"


def test_config_command_prints_and_rejects_bad_labels() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["serve", "labelstudio-config", "--labels", "film,substrate"])
    assert res.exit_code == 0 and res.stdout == micrograph_label_config(("film", "substrate"))
    res = runner.invoke(app, ["serve", "labelstudio-config", "--labels", "film,,x"])
    assert res.exit_code == 2 and "--labels" in res.output

"""Shared CLI options: one declaration each, defaults read from the config dataclasses."""

import re

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

import samiam.cli.benchmark  # noqa: F401  (registers the command)
import samiam.cli.segment  # noqa: F401
import samiam.cli.serve  # noqa: F401
from samiam.boost.config import BoostConfig
from samiam.cli import options as opt
from samiam.cli.app import app
from samiam.generate.config import GeneratorConfig

runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
COMMANDS = {  # command path -> (has generator options, has booster options)
    ("segment",): (True, True),
    ("boost",): (False, True),
    ("benchmark",): (True, True),
    ("serve", "labelstudio"): (True, True),
}


def _click_command(path: tuple[str, ...]):
    cmd = get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _defaults(path: tuple[str, ...]) -> opt.OptionValues:
    """The command's option defaults as click sees them (what --help shows), by parameter name."""
    return opt.OptionValues(**{p.name: p.default for p in _click_command(path).params})


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_cli_defaults_build_the_config_defaults(path):
    values = _defaults(path)
    has_generator, has_boost = COMMANDS[path]
    if has_generator:
        assert opt.generator_config(values) == GeneratorConfig().validate()
    if has_boost:
        assert opt.boost_config(values) == BoostConfig().validate()


def _help_default(help_text: str, flag: str) -> str | None:
    line = next(line for line in help_text.splitlines() if re.search(rf"\s{re.escape(flag)}\s", line))
    m = re.search(r"\[default: ([^\]]+)\]", line)
    return m.group(1) if m else None


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--box-scales", ",".join(str(s) for s in GeneratorConfig().box_scales)),
        ("--box-nms-thresh", str(GeneratorConfig().box_nms_thresh)),
        ("--box-overlap", str(GeneratorConfig().box_overlap)),
        ("--points-per-side", str(GeneratorConfig().points_per_side)),
        ("--prompts", GeneratorConfig().mode),
        ("--halo", str(GeneratorConfig().halo)),
        ("--tile", "auto" if GeneratorConfig().tile is None else str(GeneratorConfig().tile)),
        ("--crop-size", str(BoostConfig().crop_size)),
        ("--crops-per-mask", str(BoostConfig().crops_per_mask)),
        ("--max-materials", str(BoostConfig().max_materials)),
        ("--encoder", BoostConfig().encoder),
        ("--method", None),  # its help wraps; checked through the config above
        ("--materials", "auto" if BoostConfig().materials == 0 else str(BoostConfig().materials)),
    ],
)
def test_segment_help_shows_the_config_defaults(flag, expected):
    res = runner.invoke(app, ["segment", "--help"], env=WIDE)
    assert res.exit_code == 0, res.output
    if expected is not None:
        assert _help_default(res.output, flag) == expected


def test_serve_keeps_its_own_materials_help_with_the_shared_default():
    param = next(p for p in _click_command(("serve", "labelstudio")).params if p.name == "materials")
    assert "pre-annotation" in param.help and param.default == "auto"
    shared = next(p for p in _click_command(("segment",)).params if p.name == "materials")
    assert "pre-annotation" not in shared.help  # the override did not leak into the shared declaration


def test_shared_options_pass_values_and_keep_own_parameters():
    toy = typer.Typer()

    @toy.command()
    @opt.shared_options(opt.BOOST_OPTIONS)
    def run(name: str = typer.Option("x", "--name"), *, opts: opt.OptionValues) -> None:
        cfg = opt.boost_config(opts)
        typer.echo(f"{name} {cfg.crop_size} {cfg.materials} {cfg.method}")

    assert runner.invoke(toy, []).output.split() == ["x", str(BoostConfig().crop_size), "0", BoostConfig().method]
    res = runner.invoke(toy, ["--name", "y", "--crop-size", "32", "-k", "3", "--method", "crops"])
    assert res.exit_code == 0, res.output
    assert res.output.split() == ["y", "32", "3", "crops"]


def test_config_default_reads_factories_and_rejects_unknown_fields():
    assert opt.config_default(BoostConfig, "field") == BoostConfig().field
    with pytest.raises(KeyError, match="no field"):
        opt.config_default(BoostConfig, "nope")

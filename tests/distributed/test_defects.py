"""``samiam defects run --cluster`` on a running scheduler (the shared test cluster): same outputs as serial."""

import json
from pathlib import Path

from typer.testing import CliRunner

from samiam.cli.app import app
from samiam.defects.outputs import OUTPUT_SUFFIXES
from tests.defects.conftest import npy_images, tiny_model_dir, train_images  # noqa: F401  (fixtures)
from tests.distributed.conftest import wait_until_idle


def _run(images, model: Path, out: Path, *extra: str):
    args = ["defects", "run", *map(str, images), "--model", str(model), "-o", str(out), "-q", *extra]
    return CliRunner().invoke(app, args)


def _docs(out: Path) -> dict[str, list]:
    return {p.name: json.loads(p.read_text())["instances"] for p in sorted(out.glob("*.defects.json"))}


def test_defects_on_a_running_scheduler_match_the_serial_run(dask_client, npy_images, tiny_model_dir, tmp_path):  # noqa: F811
    wait_until_idle(dask_client)
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"not an array")
    serial, cl = tmp_path / "serial", tmp_path / "cl"
    assert _run(npy_images, tiny_model_dir, serial).exit_code == 0
    res = _run([*npy_images, bad], tiny_model_dir, cl, "--cluster", dask_client.scheduler.address)
    assert res.exit_code == 2, res.output
    assert f"cluster: {dask_client.scheduler.address}, 2 worker(s) now" in res.output
    assert res.output.count("broken.npy") == 1  # its error line, once, and the others go on
    assert "error: 1 of 5 image(s) could not be analysed (see above)" in res.output
    assert _docs(cl) == _docs(serial) and len(_docs(cl)) == len(npy_images)
    for p in npy_images:
        assert all((cl / f"{p.stem}{suffix}").is_file() for suffix in OUTPUT_SUFFIXES.values())


def test_named_classes_on_the_cluster_match_the_serial_run(
    dask_client,
    npy_images,  # noqa: F811
    train_images,  # noqa: F811
    tiny_model_dir,  # noqa: F811
    tmp_path,
):
    wait_until_idle(dask_client)
    im = train_images[0]
    rows = "".join(
        f"{k},{x - 5},{y - 5},10,10,{npy_images[0]}\n" for (x, y), k in zip(im.centres, im.kinds, strict=True)
    )
    classes = tmp_path / "ex.csv"
    classes.write_text("label,x,y,width,height,filename\n" + rows)
    serial, cl = tmp_path / "serial", tmp_path / "cl"
    assert _run(npy_images, tiny_model_dir, serial, "--classes", str(classes)).exit_code == 0
    res = _run(npy_images, tiny_model_dir, cl, "--classes", str(classes), "--cluster", dask_client.scheduler.address)
    assert res.exit_code == 0, res.output
    docs = _docs(cl)
    assert docs == _docs(serial)
    assert all("name" in i for inst in docs.values() for i in inst)

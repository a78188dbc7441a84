#!/usr/bin/env python
"""End-to-end check of ``samiam serve labelstudio`` against a real Label Studio, on loopback only.

Steps (each bounded in time; both servers are always stopped, by process group):

1. install ``label-studio`` from PyPI into its own venv (``.labelstudio-venv/``) unless present;
2. start Label Studio on 127.0.0.1 with a throw-away data dir, user and legacy API token;
3. create a project with samiam's micrograph labelling config and upload a synthetic
   two-lattice micrograph (PNG) as a task;
4. start the samiam backend on another loopback port and connect it to the project (``/api/ml``);
5. ask Label Studio for predictions (data manager action ``retrieve_tasks_predictions``), read
   the stored prediction back (``/api/predictions``) and decode its brush RLE with samiam's
   decoder and with Label Studio's own (``label_studio_sdk.converter.brush``);
6. ask for an interactive mask (``/api/ml/ID/interactive-annotating`` with a rectangle).

Run: ``.venv/bin/python scripts/labelstudio_e2e.py [--model tiny-random] [--json summary.json]``.
Exit code 0 when every check passes; the summary (JSON) is printed and optionally written.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LS_VENV = ROOT / ".labelstudio-venv"
LS_REQUIREMENT = "label-studio==1.23.2"
HOST = "127.0.0.1"
USER = "e2e@samiam.local"
# Throw-away server: fresh secrets per run. Hex only: a urlsafe token may start with "-", which argparse
# then takes for an option ("--password: expected one argument").
PASSWORD, TOKEN = "pw" + secrets.token_hex(16), secrets.token_hex(20)

LABELS = ("film", "substrate")  # the project config is samiam's micrograph config with these labels


class E2EError(RuntimeError):
    """A step of the end-to-end check failed."""


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def ensure_label_studio(venv: Path, timeout: float) -> Path:
    """Create ``venv`` with Label Studio unless it already has the ``label-studio`` command."""
    exe = venv / "bin" / "label-studio"
    if exe.exists():
        return exe
    log(f"installing {LS_REQUIREMENT} into {venv} (a few minutes)")
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    left = max(60.0, timeout - (time.monotonic() - t0))
    proc = subprocess.run([*pip, LS_REQUIREMENT], capture_output=True, text=True, timeout=left)
    if proc.returncode != 0 or not exe.exists():
        raise E2EError(f"pip install {LS_REQUIREMENT} failed:\n{proc.stderr[-3000:]}")
    log(f"installed in {time.monotonic() - t0:.0f} s")
    return exe


def start(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start a server in its own process group, output to ``log_path``."""
    out = open(log_path, "wb")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a server and its children: SIGTERM to its process group, SIGKILL after 15 s."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass


def request(
    method: str,
    url: str,
    body: Any = None,
    *,
    token: str | None = None,
    timeout: float = 120,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    """HTTP request to a loopback server; returns (status, JSON or text)."""
    if not url.startswith(f"http://{HOST}:"):
        raise E2EError(f"refusing to contact {url}: loopback only")
    data = json.dumps(body).encode() if body is not None and content_type == "application/json" else body
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Token {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise E2EError(f"{url}: server exited with {proc.returncode}; log:\n{log_path.read_text()[-3000:]}")
        try:
            status, _ = request("GET", url, timeout=5)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(1.0)
    raise E2EError(f"{url}: not up after {timeout:.0f} s; log:\n{log_path.read_text()[-3000:]}")


def multipart(field: str, filename: str, payload: bytes, mime: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {mime}\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def expect(ok: bool, message: str) -> None:
    if not ok:
        raise E2EError(message)


def synthetic_png(path: Path, size: int) -> None:
    """A two-lattice cross-section made by samiam's STEM simulator, saved as 8-bit PNG."""
    import cv2
    import numpy as np

    from samiam.synth.stem import stack_cross_section

    img, _, _ = stack_cross_section(size, size, materials=("square", "hexagonal"), seed=3)
    cv2.imwrite(str(path), np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))


def check_regions(regions: list[dict], width: int, height: int, ls_python: Path) -> list[dict]:
    """Decode brush regions with samiam's and Label Studio's decoders; return per-region facts."""
    from samiam.labelstudio.brush_rle import decode_brush_rle

    facts = []
    for r in regions:
        expect(r.get("type") == "brushlabels" and r["value"].get("format") == "rle", f"not a brush region: {r}")
        expect((r["original_width"], r["original_height"]) == (width, height), "wrong original size")
        mask = decode_brush_rle(r["value"]["rle"], height, width)
        facts.append(
            {
                "label": r["value"].get("brushlabels"),
                "area_fraction": round(float(mask.mean()), 4),
                "rle_bytes": len(r["value"]["rle"]),
                "mask": mask,
            }
        )
    # Label Studio's own decoder (the SDK's converter) must read the same masks.
    script = (
        "import json, sys, numpy as np\nfrom label_studio_sdk.converter import brush\n"
        "regions = json.load(sys.stdin)\n"
        "print(json.dumps([float((brush.decode_rle(r['value']['rle']).reshape("
        "r['original_height'], r['original_width'], 4)[:, :, 3] > 0).mean()) for r in regions]))\n"
    )
    proc = subprocess.run(
        [str(ls_python), "-c", script], input=json.dumps(regions), capture_output=True, text=True, timeout=120
    )
    expect(proc.returncode == 0, f"Label Studio's RLE decoder failed: {proc.stderr[-2000:]}")
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    for f, t in zip(facts, theirs, strict=True):
        expect(abs(f["area_fraction"] - t) < 1e-4, f"decoders disagree: samiam {f['area_fraction']}, LS {t}")
        expect(0.001 < t < 0.999, f"mask area fraction {t:.4f} is not sensible (empty or whole image)")
    for f in facts:
        f.pop("mask")
    return facts


def check_personal_access_token(ls_url: str, image_ref: str, size: int) -> str:
    """Fetch the task image the way the backend does, with a personal access token (JWT) of the user."""
    from samiam.labelstudio.images import ImageResolver

    status, created = request("POST", f"{ls_url}/api/token/", {}, token=TOKEN)
    if status != 201 or not isinstance(created, dict) or "token" not in created:
        return f"personal access tokens unavailable (HTTP {status}: {created})"
    image = ImageResolver(url=ls_url, api_key=created["token"]).load(image_ref)
    expect(image.micrograph.width == size, "image fetched with a personal access token has the wrong size")
    return "image fetched with a personal access token"


def run(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Run every step, recording facts in ``summary``; raise ``E2EError`` on the first failed check."""
    t_start = time.monotonic()
    ls_exe = ensure_label_studio(args.venv, args.install_timeout)
    ls_python = args.venv / "bin" / "python"
    work = Path(tempfile.mkdtemp(prefix="samiam-ls-e2e-"))
    ls_port, ml_port = free_port(), free_port()
    ls_url, ml_url = f"http://{HOST}:{ls_port}", f"http://{HOST}:{ml_port}"
    summary.update(label_studio=LS_REQUIREMENT, model=args.model, work_dir=str(work))
    ls_proc = ml_proc = None
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_"))}
        ls_env = {
            **env,
            "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false",
            "ML_TIMEOUT_PREDICT": str(args.predict_timeout),
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
        }
        ls_cmd = [
            str(ls_exe),
            "start",
            "--no-browser",
            "--internal-host",
            HOST,
            "--port",
            str(ls_port),
            "--data-dir",
            str(work / "ls-data"),
            f"--username={USER}",
            f"--password={PASSWORD}",
            f"--user-token={TOKEN}",
            "--enable-legacy-api-token",
        ]
        log(f"starting Label Studio on {ls_url}")
        t0 = time.monotonic()
        ls_proc = start(ls_cmd, ls_env, work / "label-studio.log")
        wait_until_up(f"{ls_url}/health", ls_proc, args.start_timeout, work / "label-studio.log")
        summary["label_studio_start_s"] = round(time.monotonic() - t0, 1)
        status, who = request("GET", f"{ls_url}/api/current-user/whoami", token=TOKEN)
        expect(status == 200, f"legacy token rejected by Label Studio (HTTP {status}): {who}")

        from samiam.labelstudio.config import micrograph_label_config

        project_doc = {"title": "samiam e2e", "label_config": micrograph_label_config(LABELS)}
        status, project = request("POST", f"{ls_url}/api/projects", project_doc, token=TOKEN)
        expect(status == 201, f"project creation failed (HTTP {status}): {project}")
        pid = project["id"]
        png = work / "two_lattices.png"
        synthetic_png(png, args.size)
        body, ctype = multipart("file", png.name, png.read_bytes(), "image/png")
        status, imported = request("POST", f"{ls_url}/api/projects/{pid}/import", body, token=TOKEN, content_type=ctype)
        expect(status == 201, f"image import failed (HTTP {status}): {imported}")
        status, tasks = request("GET", f"{ls_url}/api/tasks?project={pid}", token=TOKEN)
        tasks = tasks.get("tasks", tasks) if isinstance(tasks, dict) else tasks
        expect(status == 200 and len(tasks) == 1, f"expected one task (HTTP {status}): {tasks}")
        task = tasks[0]
        summary["task_image"] = task["data"]["image"]
        summary["personal_access_token"] = check_personal_access_token(ls_url, task["data"]["image"], args.size)

        ml_env = {**env, "LABEL_STUDIO_URL": ls_url, "LABEL_STUDIO_API_KEY": TOKEN}
        ml_cmd = [
            sys.executable,
            "-c",
            "from samiam.cli.app import main; main()",
            "serve",
            "labelstudio",
            "--host",
            HOST,
            "--port",
            str(ml_port),
            "--model",
            args.model,
            "--device",
            "cpu",
            "--verbose",
        ]
        if args.model == "tiny-random":  # random weights: keep every mask, coarse grid
            ml_cmd += ["--pred-iou-thresh", "0", "--stability-thresh", "0", "--points-per-side", "8"]
        log(f"starting the samiam backend ({args.model}) on {ml_url}")
        ml_proc = start(ml_cmd, ml_env, work / "samiam-backend.log")
        wait_until_up(f"{ml_url}/health", ml_proc, args.start_timeout, work / "samiam-backend.log")

        status, ml = request(
            "POST",
            f"{ls_url}/api/ml",
            {"url": ml_url, "project": pid, "title": "samiam", "is_interactive": True},
            token=TOKEN,
        )
        expect(status == 201, f"connecting the backend failed (HTTP {status}): {ml}")
        status, ml = request("GET", f"{ls_url}/api/ml/{ml['id']}", token=TOKEN)
        summary["ml_backend"] = {k: ml.get(k) for k in ("id", "state", "model_version", "error_message")}
        expect(ml.get("state") == "CO", f"backend not connected: {summary['ml_backend']}")
        status, versions = request("GET", f"{ls_url}/api/ml/{ml['id']}/versions", token=TOKEN)
        expect(status == 200 and versions.get("versions") == [ml["model_version"]], f"versions: {versions}")

        log("retrieving predictions (automatic mode)")
        t0 = time.monotonic()
        status, action = request(
            "POST",
            f"{ls_url}/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
            {"selectedItems": {"all": True, "excluded": []}},
            token=TOKEN,
            timeout=args.predict_timeout + 60,
        )
        expect(status == 200, f"retrieve_tasks_predictions failed (HTTP {status}): {action}")
        summary["automatic_s"] = round(time.monotonic() - t0, 1)
        status, predictions = request("GET", f"{ls_url}/api/predictions?task={task['id']}", token=TOKEN)
        expect(
            status == 200 and len(predictions) == 1,
            f"expected one stored prediction (HTTP {status}): {predictions}; backend log:\n"
            f"{(work / 'samiam-backend.log').read_text()[-3000:]}",
        )
        pred = predictions[0]
        expect(pred["model_version"] == ml["model_version"], f"model version {pred['model_version']}")
        expect(len(pred["result"]) >= 1, "the stored prediction has no region")
        summary["automatic"] = check_regions(pred["result"], args.size, args.size, ls_python)
        labels = [f["label"] for f in summary["automatic"]]
        expect(all(lab and lab[0] in LABELS for lab in labels), f"labels {labels}")

        log("interactive annotation (rectangle)")
        rect = {
            "id": "r1",
            "from_name": "box",
            "to_name": "image",
            "type": "rectanglelabels",
            "origin": "manual",
            "original_width": args.size,
            "original_height": args.size,
            "image_rotation": 0,
            "value": {
                "x": 10,
                "y": 55,
                "width": 80,
                "height": 35,
                "rotation": 0,
                "rectanglelabels": ["substrate"],
            },
        }
        status, answer = request(
            "POST",
            f"{ls_url}/api/ml/{ml['id']}/interactive-annotating",
            {"task": task["id"], "context": {"result": [rect]}},
            token=TOKEN,
        )
        expect(status == 200 and "data" in answer, f"interactive annotating failed (HTTP {status}): {answer}")
        regions = answer["data"]["result"]
        expect(len(regions) == 1, f"expected one interactive region: {answer}")
        summary["interactive"] = check_regions(regions, args.size, args.size, ls_python)
        expect(summary["interactive"][0]["label"] == ["substrate"], "interactive label")
        summary["ok"] = True
    finally:
        stop(ml_proc)
        stop(ls_proc)
        summary["total_s"] = round(time.monotonic() - t_start, 1)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random", help="backend model (tiny-random, litemedsam, vit_b...)")
    parser.add_argument("--size", type=int, default=256, help="side of the synthetic micrograph (px)")
    parser.add_argument("--venv", type=Path, default=LS_VENV, help="Label Studio's own venv")
    parser.add_argument("--install-timeout", type=float, default=900)
    parser.add_argument("--start-timeout", type=float, default=300)
    parser.add_argument("--predict-timeout", type=int, default=300)
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, Label Studio data)")
    args = parser.parse_args(argv)
    summary: dict[str, Any] = {"ok": False}
    try:
        run(args, summary)
        code = 0
    except (E2EError, subprocess.TimeoutExpired, OSError) as exc:
        summary["error"] = str(exc)
        code = 1
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return code


if __name__ == "__main__":
    sys.exit(main())

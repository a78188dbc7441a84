"""The torchvision op shim: registered only where the native op is missing, inert otherwise."""

import subprocess
import sys
import textwrap

import torch

from samiam.models.compat import nms_reference


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def _brute_nms(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep = []
    for i in order:
        ok = True
        for j in keep:
            x1 = max(boxes[i][0], boxes[j][0])
            y1 = max(boxes[i][1], boxes[j][1])
            x2 = min(boxes[i][2], boxes[j][2])
            y2 = min(boxes[i][3], boxes[j][3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            ai = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            aj = (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1])
            if inter / (ai + aj - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def test_reference_nms_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(120, 2, generator=g) * 100
    wh = torch.rand(120, 2, generator=g) * 40 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(120, generator=g)
    for thr in (0.1, 0.5, 0.9):
        got = nms_reference(boxes, scores, thr).tolist()
        assert got == _brute_nms(boxes.tolist(), scores.tolist(), thr)
    assert nms_reference(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_fresh_process_imports_torchvision_and_runs_nms():
    # Whatever this machine has (native ops or not), torchvision, timm and segment_anything import,
    # and torchvision.ops.nms gives the reference answer.
    out = _run(
        """
        import samiam.models as m
        import torch, torchvision, timm, segment_anything
        from samiam.models.compat import nms_reference
        g = torch.Generator().manual_seed(1)
        xy = torch.rand(300, 2, generator=g) * 200
        boxes = torch.cat([xy, xy + 30], 1)
        s = torch.rand(300, generator=g)
        assert torchvision.ops.nms(boxes, s, 0.5).tolist() == nms_reference(boxes, s, 0.5).tolist()
        print(m.TORCHVISION_OPS)
        """
    )
    assert out in ("shim", "native")


def test_shim_is_inert_where_the_native_op_exists():
    # Simulate a torch where torchvision::nms is already registered natively: install() must
    # report "native" and leave that kernel in place.
    out = _run(
        """
        import torch
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        def native(d, s, t):
            return torch.full((1,), 4242, dtype=torch.int64)
        lib.impl("nms", native, "CompositeExplicitAutograd")
        from samiam.models.compat import install
        state = install()
        r = torch.ops.torchvision.nms(torch.zeros(2, 4), torch.zeros(2), 0.5)
        print(state, int(r[0]))
        """
    )
    assert out == "native 4242"


def test_install_is_idempotent():
    out = _run(
        """
        from samiam.models.compat import install
        a = install(); b = install()
        import torchvision
        print(a == b)
        """
    )
    assert out == "True"

"""Label Studio brush RLE: encoder checked against a decoder written here from the documented format."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from samiam.labelstudio.brush_rle import decode_brush_rle, decode_brush_values, encode_brush_rle

REPO = Path(__file__).resolve().parents[2]
LS_PYTHON = REPO / ".labelstudio-venv" / "bin" / "python"


def reference_decode(rle: list[int]) -> np.ndarray:
    """Bit-by-bit decoder following the rle-pack description (independent of samiam's decoder).

    Header: 32-bit count, 5-bit word size - 1, four 4-bit run-length widths - 1. Blocks: 1 bit
    repeat flag, 2 bits width index, width bits (n - 1), then one word (repeat) or n words.
    """
    bits = [(byte >> (7 - k)) & 1 for byte in rle for k in range(8)]
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        value = 0
        for _ in range(n):
            value = (value << 1) | bits[pos]
            pos += 1
        return value

    num = read(32)
    word = read(5) + 1
    widths = [read(4) + 1 for _ in range(4)]
    out: list[int] = []
    while len(out) < num:
        repeat = read(1)
        n = read(widths[read(2)]) + 1
        if repeat:
            out.extend([read(word)] * n)
        else:
            out.extend(read(word) for _ in range(n))
    return np.array(out[:num])


def test_single_pixel_matches_hand_encoded_bytes() -> None:
    # num=4 | word 8 | widths 3,4,8,16 | repeat block: 1, index 00, n-1=3 (011), value 255 | 5 pad bits
    assert encode_brush_rle(np.ones((1, 1), bool)) == [0, 0, 0, 4, 57, 27, 252, 127, 224]


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((5, 7), bool),
        np.ones((5, 7), bool),
        np.random.default_rng(0).random((33, 29)) > 0.5,  # many short runs
        np.pad(np.ones((40, 60), bool), ((30, 30), (70, 70))),  # long runs of every length field
        np.zeros((200, 200), bool),  # 160000 values: runs split at 65536
    ],
    ids=["empty", "full", "noise", "rectangle", "long-runs"],
)
def test_round_trip_through_reference_decoder(mask: np.ndarray) -> None:
    rle = encode_brush_rle(mask)
    assert all(isinstance(b, int) and 0 <= b <= 255 for b in rle)
    rgba = reference_decode(rle).reshape(*mask.shape, 4)
    # Mask pixels are opaque white (255 in every channel), background is 0.
    np.testing.assert_array_equal(rgba, np.repeat(mask[:, :, None] * 255, 4, axis=2))
    np.testing.assert_array_equal(decode_brush_rle(rle, *mask.shape), mask)


def test_decoder_reads_literal_blocks_and_other_widths() -> None:
    # Hand-built stream: num=3, word size 8, widths 1,1,1,1: literal block of 3 words 0, 255, 7.
    bits = f"{3:032b}" + f"{7:05b}" + "0000" * 4 + "0" + "00" + "0" + f"{0:08b}"
    bits += "0" + "00" + "0" + f"{255:08b}" + "0" + "00" + "0" + f"{7:08b}"
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    np.testing.assert_array_equal(decode_brush_values(rle), [0, 255, 7])


def test_decode_rejects_wrong_size_and_truncation() -> None:
    rle = encode_brush_rle(np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="expected 5x4x4"):
        decode_brush_rle(rle, 5, 4)
    with pytest.raises(ValueError, match="ends before"):
        decode_brush_values(rle[:5])
    with pytest.raises(ValueError, match="0..255"):
        decode_brush_values([0, 0, 0, 4, 300])


def test_encode_rejects_non_2d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        encode_brush_rle(np.ones((2, 2, 2), bool))


@pytest.mark.skipif(not LS_PYTHON.exists(), reason="Label Studio venv (.labelstudio-venv) not installed")
def test_identical_to_label_studio_sdk_converter(tmp_path: Path) -> None:
    """Byte-for-byte equal to ``label_studio_sdk.converter.brush.mask2rle`` (installed with label-studio)."""
    rng = np.random.default_rng(1)
    masks = [rng.random((21, 17)) > 0.7, np.pad(np.ones((50, 50), bool), 150)]
    for i, m in enumerate(masks):
        np.save(tmp_path / f"m{i}.npy", m)
    script = (
        "import json, sys, numpy as np\n"
        "from label_studio_sdk.converter import brush\n"
        f"paths = [r'{tmp_path}/m%d.npy' % i for i in range({len(masks)})]\n"
        "out = [brush.mask2rle(np.load(p).astype(np.uint8) * 255) for p in paths]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(LS_PYTHON), "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [encode_brush_rle(m) for m in masks] == expected

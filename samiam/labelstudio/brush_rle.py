"""Label Studio's own brush RLE format (``"format": "rle"``), not COCO RLE.

A brush mask is sent as the run-length code of the flattened ``H x W x 4`` RGBA uint8 image,
row-major. The stream (thi.ng ``rle-pack``, as used by the Label Studio editor and by
``label_studio_converter.brush``) is big-endian bits:

* header: 32 bits ``num`` (number of values = H*W*4), 5 bits ``word_size - 1``,
  4 x 4 bits ``rle_size_k - 1`` (bit widths of the run-length fields);
* then blocks until ``num`` values are decoded: 1 bit ``repeat``, 2 bits ``k`` (which run-length
  width), ``rle_size_k`` bits ``n - 1``; a *repeat* block is followed by one word repeated ``n``
  times, a *literal* block by ``n`` words;
* zero bits pad the stream to whole bytes.

Like ``brush.mask2rle`` of the converter, a mask pixel is written as 255 in all four channels
(opaque white) and background as 0; Label Studio reads the alpha channel. The encoder
reproduces the converter byte for byte (word size 8, run widths 3, 4, 8, 16 bits, single values
as 1-word literals, runs longer than 65536 split), so its output is what Label Studio expects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WORD_SIZE = 8
RLE_SIZES = (3, 4, 8, 16)
_MAX_RUN = 1 << RLE_SIZES[-1]


def _runs(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths and values of the runs of equal values in a 1-D array."""
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [flat.size]))
    return ends - starts, flat[starts]


def _split_long_runs(lengths: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split runs longer than 65536 into chunks of 65536 plus a remainder, as the converter does.

    Returns:
        (lengths, values, split) where ``split`` marks chunks of a split run: the converter writes
        all of them, the remainder included, as repeat blocks with the 16-bit length field.
    """
    n_full = (lengths - 1) // _MAX_RUN  # chunks of exactly 65536 before the remainder
    if not n_full.any():
        return lengths, values, np.zeros(lengths.size, bool)
    per_run = n_full + 1
    out_len = np.full(int(per_run.sum()), _MAX_RUN, dtype=np.int64)
    last = np.cumsum(per_run) - 1
    out_len[last] = lengths - n_full * _MAX_RUN
    return out_len, np.repeat(values, per_run), np.repeat(n_full > 0, per_run)


def _bits_of(codes: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Concatenate the ``widths[i]`` low bits of ``codes[i]`` (MSB first) into one bit array."""
    total = int(widths.sum())
    owner = np.repeat(np.arange(codes.size), widths)
    offset = np.cumsum(widths) - widths
    pos_in_code = np.arange(total) - offset[owner]
    shift = widths[owner] - 1 - pos_in_code
    return ((codes[owner] >> shift) & 1).astype(np.uint8)


def encode_brush_rle(mask: np.ndarray) -> list[int]:
    """Encode a 2-D mask as a Label Studio brush RLE byte list.

    Args:
        mask: HxW boolean (or 0/non-zero) array.

    Returns:
        The RLE stream as a list of ints in 0..255 (the ``value.rle`` of a ``brushlabels`` result).

    Raises:
        ValueError: if ``mask`` is not 2-D or is empty.
    """
    m = np.asarray(mask)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"expected a non-empty 2-D mask, got shape {m.shape}")
    pixel_lengths, pixel_values = _runs(m.astype(bool).ravel())
    # Four equal channels per pixel: runs of the RGBA stream are the pixel runs times 4.
    lengths, values, split = _split_long_runs(pixel_lengths.astype(np.int64) * 4, pixel_values.astype(np.int64) * 255)
    # Smallest length field that holds n - 1; single values are 1-word literal blocks.
    size_idx = np.searchsorted(np.array([1 << s for s in RLE_SIZES[:-1]]), lengths, side="left")
    size_idx[split] = len(RLE_SIZES) - 1
    single = (lengths == 1) & ~split
    size_idx[single] = 0
    count_bits = np.array(RLE_SIZES, dtype=np.int64)[size_idx]
    repeat = (~single).astype(np.int64)
    widths = 1 + 2 + count_bits + WORD_SIZE
    codes = (
        (repeat << (2 + count_bits + WORD_SIZE))
        | (size_idx.astype(np.int64) << (count_bits + WORD_SIZE))
        | ((lengths - 1) << WORD_SIZE)
        | values
    )
    num = m.size * 4
    header_codes = np.array([num, WORD_SIZE - 1, *[s - 1 for s in RLE_SIZES]], dtype=np.int64)
    header_widths = np.array([32, 5, 4, 4, 4, 4], dtype=np.int64)
    bits = np.concatenate([_bits_of(header_codes, header_widths), _bits_of(codes, widths)])
    pad = 8 - bits.size % 8  # the converter always pads, a whole zero byte when already aligned
    bits = np.concatenate([bits, np.zeros(pad, np.uint8)])
    return np.packbits(bits).tolist()


class _BitReader:
    """Reads big-endian unsigned fields from a byte sequence."""

    def __init__(self, data: Sequence[int]) -> None:
        arr = np.asarray(data)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError("brush RLE must be a non-empty list of byte values")
        if arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 255:
            raise ValueError("brush RLE must hold integers in 0..255")
        self.bits = (np.unpackbits(arr.astype(np.uint8)) + ord("0")).tobytes().decode("ascii")
        self.pos = 0

    def read(self, n: int) -> int:
        end = self.pos + n
        if end > len(self.bits):
            raise ValueError("brush RLE stream ends before all values are decoded")
        value = int(self.bits[self.pos : end], 2)
        self.pos = end
        return value


def decode_brush_values(rle: Sequence[int]) -> np.ndarray:
    """Decode a brush RLE stream to its flat value array (any word size and run widths).

    Args:
        rle: the byte list.

    Returns:
        1-D uint32 array of ``num`` values (for a brush: the flattened RGBA image).

    Raises:
        ValueError: truncated or malformed stream.
    """
    reader = _BitReader(rle)
    num = reader.read(32)
    word_size = reader.read(5) + 1
    rle_sizes = [reader.read(4) + 1 for _ in range(4)]
    run_values: list[int] = []
    run_lengths: list[int] = []
    done = 0
    while done < num:
        repeat = reader.read(1)
        n = reader.read(rle_sizes[reader.read(2)]) + 1
        if repeat:
            run_values.append(reader.read(word_size))
            run_lengths.append(n)
        else:
            run_values.extend(reader.read(word_size) for _ in range(n))
            run_lengths.extend([1] * n)
        done += n
    out = np.repeat(np.asarray(run_values, np.uint32), np.asarray(run_lengths, np.int64))
    return out[:num]


def decode_brush_rle(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """Decode a Label Studio brush RLE to an HxW boolean mask (alpha channel > 0).

    Args:
        rle: the ``value.rle`` byte list.
        height: ``original_height`` of the result.
        width: ``original_width`` of the result.

    Returns:
        HxW bool mask.

    Raises:
        ValueError: malformed stream, or one whose length is not ``height * width * 4``.
    """
    values = decode_brush_values(rle)
    if values.size != height * width * 4:
        raise ValueError(f"brush RLE holds {values.size} values, expected {height}x{width}x4 = {height * width * 4}")
    return values.reshape(height, width, 4)[:, :, 3] > 0

"""Read STM height maps: Nanonis .sxm (nanonispy2), Omicron MATRIX (access2theMatrix), else samiam.io."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from samiam.errors import InputError
from samiam.io.micrograph import Micrograph, micrograph_from_array
from samiam.io.read import SUPPORTED_SUFFIXES, read_micrograph

SXM_SUFFIXES = (".sxm",)
MATRIX_MARK = "_mtrx"  # Omicron MATRIX image files end in e.g. ".Z_mtrx", ".I_mtrx"
STM_SUFFIXES = SUPPORTED_SUFFIXES + SXM_SUFFIXES


def is_matrix_file(path: Path) -> bool:
    """True for an Omicron MATRIX image file (``*.Z_mtrx``, ``*.I_mtrx``, ...)."""
    return path.suffix.lower().endswith(MATRIX_MARK) and path.suffix.lower() != ".mtrx"


def read_sxm(path: Path, channel: str = "Z") -> Micrograph:
    """Read the forward scan of one channel of a Nanonis .sxm file with nanonispy2.

    Args:
        path: the .sxm file.
        channel: channel name (default the topography ``Z``).

    Returns:
        The micrograph; ``raw`` holds the heights in the file's unit (metres for Z), upward
        scans flipped so that row 0 is the top of the image.
    """
    try:
        import nanonispy2 as nap
    except ImportError:
        raise InputError(
            f"{path}: reading Nanonis .sxm needs the 'nanonispy2' package (pip install nanonispy2)"
        ) from None
    try:
        scan = nap.read.Scan(str(path))
    except Exception as exc:  # the reader raises many types for broken files
        raise InputError(f"{path}: not a readable Nanonis .sxm file ({type(exc).__name__}: {exc})") from None
    if channel not in scan.signals:
        raise InputError(f"{path}: no '{channel}' channel; channels are {', '.join(scan.signals)}")
    data = np.asarray(scan.signals[channel]["forward"], np.float64)
    if str(scan.header.get("scan_dir", "")).strip().lower() == "up":
        data = data[::-1]
    finite_rows = np.isfinite(data).all(axis=1)
    if not finite_rows.any():
        raise InputError(f"{path}: the '{channel}' channel holds no finite values")
    if not finite_rows.all():  # an interrupted scan leaves NaN rows: keep the complete ones
        data = data[finite_rows]
    size = scan.header.get("scan_range")
    pixel = float(size[0]) / data.shape[1] if size is not None and len(size) else None
    return micrograph_from_array(
        data,
        str(path),
        pixel_size=pixel,
        pixel_unit="m" if pixel else None,
        meta={"reader": "nanonispy2", "channel": channel, "dropped_incomplete_rows": int((~finite_rows).sum())},
    )


def read_matrix(path: Path) -> Micrograph:
    """Read the forward/up trace of an Omicron MATRIX image file with access2theMatrix.

    The parameter file (``<name>_0001.mtrx``) must sit beside the image file.
    """
    try:
        import access2thematrix
    except ImportError:
        raise InputError(f"{path}: reading Omicron MATRIX needs the 'access2thematrix' package") from None
    mtrx = access2thematrix.MtrxData()
    traces, message = mtrx.open(str(path))
    if not traces:
        raise InputError(
            f"{path}: not a readable Omicron MATRIX image ({message}; the _0001.mtrx parameter "
            "file must be in the same folder)"
        )
    im, message = mtrx.select_image(traces[0])
    data = np.asarray(im.data, np.float64)
    if data.ndim != 2 or data.size == 0:
        raise InputError(f"{path}: {message}")
    pixel = float(im.width) / data.shape[1] if im.width else None
    return micrograph_from_array(
        data,
        str(path),
        pixel_size=pixel,
        pixel_unit="m" if pixel else None,
        meta={"reader": "access2theMatrix", "trace": traces[0]},
    )


def read_stm(path: str | Path, frame: int | None = None) -> Micrograph:
    """Read an STM height map, dispatching on the suffix.

    Args:
        path: .sxm (Nanonis), *.Z_mtrx (Omicron MATRIX), or anything ``samiam.io.read_micrograph``
            reads (.npy, PNG/JPEG, TIFF, ...).
        frame: frame index for stacks.

    Returns:
        The micrograph with the heights in ``raw``.

    Raises:
        InputError: missing, unreadable or unsupported file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in SXM_SUFFIXES:
        return read_sxm(path)
    if is_matrix_file(path):
        return read_matrix(path)
    return read_micrograph(path, frame=frame)


def expand_stm_inputs(paths: list[str | Path]) -> list[Path]:
    """Files as given; folders expanded (sorted, not recursive) to the files ``read_stm`` reads."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(
                sorted(
                    q for q in p.iterdir() if q.is_file() and (q.suffix.lower() in STM_SUFFIXES or is_matrix_file(q))
                )
            )
        else:
            out.append(p)
    return out

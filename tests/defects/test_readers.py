import numpy as np
import pytest

from samiam.defects.readers import expand_stm_inputs, read_stm
from samiam.errors import InputError


def write_sxm(path, z_forward, scan_dir="down"):
    """Write a minimal Nanonis .sxm (header text, SCANIT_END, 0x1A 0x04, big-endian float32 data).

    nanonispy2 has no writer, so this follows the published layout: every channel is stored as
    forward then backward image, rows in acquisition order.
    """
    ny, nx = z_forward.shape
    header = (
        ":NANONIS_VERSION:\n2\n"
        ":SCANIT_TYPE:\n              FLOAT            MSBFIRST\n"
        f":SCAN_PIXELS:\n       {nx}       {ny}\n"
        ":SCAN_TIME:\n             1.0E+0             1.0E+0\n"
        ":SCAN_RANGE:\n           2.0E-8           2.0E-8\n"
        ":SCAN_OFFSET:\n             0.0E+0         0.0E+0\n"
        ":SCAN_ANGLE:\n            0.000E+0\n"
        f":SCAN_DIR:\n{scan_dir}\n"
        ":BIAS:\n1.0E+0\n"
        ":ACQ_TIME:\n100.0\n"
        ":DATA_INFO:\n"
        "\tChannel\tName\tUnit\tDirection\tCalibration\tOffset\n"
        "\t14\tZ\tm\tboth\t1.000E+0\t0.000E+0\n"
        "\n:SCANIT_END:\n"
    ).encode()
    stored = z_forward[::-1] if scan_dir == "up" else z_forward
    data = np.stack([stored, stored[:, ::-1]]).astype(">f4")  # forward, backward
    path.write_bytes(header + b"\n\n\x1a\x04" + data.tobytes())


@pytest.mark.parametrize("scan_dir", ["down", "up"])
def test_read_sxm_returns_the_forward_topography(tmp_path, scan_dir):
    z = np.random.default_rng(0).normal(0, 1e-10, (40, 48)).astype(np.float32)
    z[5:10, 30:35] += 5e-10  # an asymmetric feature: catches flips
    path = tmp_path / "scan.sxm"
    write_sxm(path, z, scan_dir)
    mg = read_stm(path)
    assert mg.raw.shape == (40, 48)
    assert np.allclose(mg.raw, z)
    assert mg.meta["reader"] == "nanonispy2"
    assert mg.pixel_size == pytest.approx(2e-8 / 48)


def test_corrupt_sxm_gives_an_input_error(tmp_path):
    path = tmp_path / "broken.sxm"
    path.write_bytes(b":NANONIS_VERSION:\n2\n")
    with pytest.raises(InputError, match="broken.sxm"):
        read_stm(path)


def test_matrix_file_without_parameter_file_gives_an_input_error(tmp_path):
    path = tmp_path / "default_2020Mar05-185936_STM-STM--29_4.Z_mtrx"
    path.write_bytes(b"ONTMATRX0101" + b"\0" * 64)
    with pytest.raises(InputError, match="parameter file"):
        read_stm(path)


def test_npy_falls_back_to_samiam_io_and_folders_expand(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(1).normal(size=(32, 32)))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "b.sxm").write_bytes(b"")
    files = expand_stm_inputs([tmp_path])
    assert [f.name for f in files] == ["a.npy", "b.sxm"]
    assert read_stm(files[0]).raw.shape == (32, 32)
    with pytest.raises(InputError, match="no such file"):
        read_stm(tmp_path / "missing.npy")

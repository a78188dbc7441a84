"""Atom-column finder on synthetic lattices."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from samiam.defects.stem.bulk import fourier_bulk
from samiam.defects.stem.columns import find_columns, local_maxima, refine_subpixel
from samiam.defects.stem.lattice import find_lattice
from samiam.errors import InputError
from samiam.synth.stem_defects import synthetic_stem_defects


@pytest.mark.parametrize("crystal", ["square", "hexagonal", "rectangular"])
def test_columns_of_a_synthetic_lattice(crystal):
    s = synthetic_stem_defects(256, crystal=crystal, kinds=(), dose=100, seed=5)
    lat = find_lattice(s.image)
    cols = find_columns(fourier_bulk(s.image, lat.bragg), lat.period_px)
    assert cols.spacing == pytest.approx(s.spacing, rel=0.05)
    inner = s.columns[((s.columns > 12) & (s.columns < 244)).all(1)]
    d, _ = cKDTree(cols.xy).query(inner)
    assert np.mean(d < 0.5) > 0.97  # every interior column, to sub-pixel accuracy
    found = cols.xy[((cols.xy > 12) & (cols.xy < 244)).all(1)]
    fd, _ = cKDTree(s.columns).query(found)
    assert np.mean(fd < 1.0) > 0.97  # and few interior maxima that are not columns


def test_dim_column_beside_a_bright_one_is_kept():
    img = np.zeros((40, 40), np.float32)
    yy, xx = np.mgrid[0:40, 0:40]
    img += np.exp(-((xx - 15) ** 2 + (yy - 20) ** 2) / 4.0) + 0.3 * np.exp(-((xx - 21) ** 2 + (yy - 20) ** 2) / 4.0)
    yx = local_maxima(img, 5.0)
    assert {tuple(p) for p in yx} == {(20, 15), (20, 21)}


def test_subpixel_refinement_finds_the_vertex():
    x = np.arange(20, dtype=np.float64)
    img = np.exp(-(((x[None, :] - 10.3) ** 2) + (x[:, None] - 7.8) ** 2) / 8.0)
    xy = refine_subpixel(img, np.array([[8, 10]]))
    assert xy[0] == pytest.approx([10.3, 7.8], abs=0.1)


def test_too_few_columns_is_an_input_error():
    with pytest.raises(InputError, match="atom column"):
        find_columns(np.zeros((64, 64), np.float32), 8.0)

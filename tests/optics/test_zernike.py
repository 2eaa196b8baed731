"""Zernike basis against Noll (1976) and closed-form orthonormality."""

import math

import numpy as np
import pytest
import torch

from optics.lens import ZernikeLens
from optics.zernike import nm_to_noll, noll_to_nm, zernike_basis

# Noll 1976, Table 1: j → (n, |m|, "cos"/"sin"/"" for m = 0).
NOLL_TABLE = {
    1: (0, 0, ""), 2: (1, 1, "cos"), 3: (1, 1, "sin"), 4: (2, 0, ""), 5: (2, 2, "sin"),
    6: (2, 2, "cos"), 7: (3, 1, "sin"), 8: (3, 1, "cos"), 9: (3, 3, "sin"), 10: (3, 3, "cos"),
    11: (4, 0, ""), 12: (4, 2, "cos"), 13: (4, 2, "sin"), 14: (4, 4, "cos"), 15: (4, 4, "sin"),
    16: (5, 1, "cos"), 17: (5, 1, "sin"), 18: (5, 3, "cos"), 19: (5, 3, "sin"),
    20: (5, 5, "cos"), 21: (5, 5, "sin"), 22: (6, 0, ""),
}  # fmt: skip


@pytest.mark.parametrize("j", sorted(NOLL_TABLE))
def test_noll_table(j):
    n, m_abs, kind = NOLL_TABLE[j]
    got_n, got_m = noll_to_nm(j)
    assert (got_n, abs(got_m)) == (n, m_abs)
    assert {"": got_m == 0, "cos": got_m > 0, "sin": got_m < 0}[kind]
    assert nm_to_noll(got_n, got_m) == j


def test_closed_forms():
    rng = np.random.default_rng(0)
    rho, theta = rng.uniform(0, 1, 50), rng.uniform(-np.pi, np.pi, 50)
    z = zernike_basis(11, rho, theta)
    expected = {
        1: np.ones_like(rho),
        2: 2 * rho * np.cos(theta),
        3: 2 * rho * np.sin(theta),
        4: math.sqrt(3) * (2 * rho**2 - 1),
        5: math.sqrt(6) * rho**2 * np.sin(2 * theta),
        6: math.sqrt(6) * rho**2 * np.cos(2 * theta),
        7: math.sqrt(8) * (3 * rho**3 - 2 * rho) * np.sin(theta),
        8: math.sqrt(8) * (3 * rho**3 - 2 * rho) * np.cos(theta),
        9: math.sqrt(8) * rho**3 * np.sin(3 * theta),
        10: math.sqrt(8) * rho**3 * np.cos(3 * theta),
        11: math.sqrt(5) * (6 * rho**4 - 6 * rho**2 + 1),
    }
    for j, ref in expected.items():
        np.testing.assert_allclose(z[j - 1], ref, atol=1e-12, err_msg=f"Z{j}")


def test_orthonormal_first_36_on_fine_grid():
    n = 1024
    c = (np.arange(n) - n / 2 + 0.5) / (n / 2)
    x, y = np.meshgrid(c, c)
    inside = x**2 + y**2 <= 1
    z = zernike_basis(36, np.hypot(x, y)[inside], np.arctan2(y, x)[inside])
    gram = z @ z.T / inside.sum()
    assert np.abs(np.diag(gram) - 1).max() < 1e-2
    assert np.abs(gram - np.diag(np.diag(gram))).max() < 1e-2


def test_orthonormal_all_350_by_exact_quadrature():
    # Gauss–Legendre in t = ρ² (dA = ½ dt dθ) and uniform θ integrate these polynomials exactly.
    t, w = np.polynomial.legendre.leggauss(40)
    t, w = (t + 1) / 2, w / 2
    theta = np.arange(128) * 2 * np.pi / 128
    rho = np.sqrt(t)[:, None].repeat(128, 1)
    th = theta[None, :].repeat(40, 0)
    weights = (w[:, None] / 2 * (2 * np.pi / 128)).repeat(128, 1) / np.pi  # mean over the disk
    z = zernike_basis(350, rho.ravel(), th.ravel())
    gram = (z * weights.ravel()) @ z.T
    np.testing.assert_allclose(gram, np.eye(350), atol=1e-7)  # float64 sums at n = 25


def test_symmetry_reduced_height_equals_direct_basis():
    """Σ c_j Z_j on 1/8 of the disk + D4 symmetry equals the full-grid basis sum."""
    n, terms = 48, 61  # Z61 (sin 6θ) needs its partner Z62: exercises the padding
    lens = ZernikeLens(
        pupil_grid=n,
        pupil_pitch_um=4.0,
        psf_size_px=16,
        sensor_distance_mm=10.0,
        num_zernike=terms,
        pad_factor=8,
        init_std_um=0.3,
        sampling_check="off",
        base_lens=False,
    )
    coeffs = lens.coefficients_um().detach().double().numpy()[:terms]
    assert np.count_nonzero(coeffs[3:]) == terms - 3
    c = np.arange(n) - n // 2
    x, y = np.meshgrid(c, -c)  # row 0 = +y
    inside = 4 * (x**2 + y**2) < n * n
    rho, theta = np.hypot(x, y) / (n / 2), np.arctan2(y, x)
    direct = np.tensordot(coeffs, zernike_basis(terms, rho, theta), axes=1) * inside
    got = lens.height_map_um(include_base=False).detach().double().numpy()
    np.testing.assert_allclose(got, direct, atol=2e-5)


def test_invalid_indices():
    with pytest.raises(ValueError, match="Noll index"):
        noll_to_nm(0)
    with pytest.raises(ValueError, match="num_terms"):
        zernike_basis(0, np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="invalid Zernike order"):
        nm_to_noll(3, 2)


def _tilt_height(j: int) -> torch.Tensor:
    lens = ZernikeLens(
        pupil_grid=32,
        pupil_pitch_um=4.0,
        psf_size_px=16,
        sensor_distance_mm=10.0,
        num_zernike=3,
        pad_factor=8,
        initial_coefficients_um={j: 1.0},
        trainable_indices=[],
        base_lens=False,
        sampling_check="off",
    )
    return lens.height_map_um(include_base=False)


def test_height_map_orientation_tilt_x():
    h = _tilt_height(2)
    assert h[16, 28] > 0 > h[16, 4]  # +x is to the right (increasing column)
    h3 = _tilt_height(3)
    assert h3[4, 16] > 0 > h3[28, 16]  # +y is up (row 0)
    assert torch.isfinite(h3).all()

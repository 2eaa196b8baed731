"""Fabrication maths (optics.fabrication): analytic Zernike sum and derivatives, Monte-Carlo
tolerance, thin-lens phases shared with the lens."""

import numpy as np
import pytest
import torch

from optics import Camera
from optics import fabrication as fab
from optics.zernike import zernike_basis

COEFFS = {4: 0.15, 5: 0.3, 7: 0.2, 8: -0.1, 11: 0.1, 14: 0.05}  # as tests/optics/test_export.py


def pupil_grid_coords(camera):
    """x, y (mm) of the pupil samples, row 0 = +y (independent of optics.fabrication)."""
    lens = camera.lens
    i = (np.arange(lens.pupil_grid) - lens.pupil_grid // 2) * lens.pupil_pitch_um * 1e-3
    return np.meshgrid(i, -i)


def test_analytic_zernike_sum_and_derivatives():
    rng = np.random.default_rng(0)
    c = rng.normal(size=36)
    x, y = rng.uniform(-0.7, 0.7, 300), rng.uniform(-0.7, 0.7, 300)
    z, zx, zy, zxy = fab.zernike_sum_with_derivatives(c, x, y)
    np.testing.assert_allclose(z, c @ zernike_basis(36, np.hypot(x, y), np.arctan2(y, x)),
                               atol=1e-10)  # fmt: skip

    def f(x, y):
        return fab.zernike_sum_with_derivatives(c, x, y)[0]

    e = 1e-5
    np.testing.assert_allclose(zx, (f(x + e, y) - f(x - e, y)) / (2 * e), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(zy, (f(x, y + e) - f(x, y - e)) / (2 * e), rtol=1e-6, atol=1e-6)
    e = 1e-4
    fd = (f(x + e, y + e) - f(x + e, y - e) - f(x - e, y + e) + f(x - e, y - e)) / (4 * e * e)
    np.testing.assert_allclose(zxy, fd, rtol=1e-5, atol=1e-4)


def test_monte_carlo_spread_grows_with_tolerance(small_lens_kwargs):
    lens = Camera("privacy", initial_coefficients_um=COEFFS, **small_lens_kwargs).lens.eval()
    x, y = pupil_grid_coords(Camera("privacy", **small_lens_kwargs))
    model = fab.SurfaceModel.from_lens(lens)
    mask = fab.aperture_mask(lens.pupil_grid)
    h = np.where(mask, model.sag_mm(x, y)[0] * 1e3, 0.0)
    nominal = fab.psf_from_height(lens, h).double().numpy()
    ref = fab.ideal_intensity(lens).double().numpy()
    small = fab.monte_carlo_psfs(lens, h, nominal, ref, draws=4, tolerance_um=0.02, seed=0)
    large = fab.monte_carlo_psfs(lens, h, nominal, ref, draws=4, tolerance_um=0.2, seed=0)
    assert small["strehl"].shape == (4, 3) and small["strehl"].std(0).min() > 0
    assert 0.99 < small["correlation"].mean() < 1.0
    assert large["correlation"].mean() < small["correlation"].mean()
    assert large["strehl"].mean() < small["strehl"].mean()


def test_radial_polynomial_in_u_is_the_zernike_radial():
    """R_n^|m|(ρ) = ρ^|m|·P(ρ²): R_4^0 = 6ρ⁴ − 6ρ² + 1, R_3^1 = 3ρ³ − 2ρ (closed forms)."""
    np.testing.assert_allclose(fab._radial_poly_in_u(4, 0), [1, -6, 6])
    np.testing.assert_allclose(fab._radial_poly_in_u(3, 1), [-2, 3])


def test_surface_model_base_is_the_thin_lens_paraboloid(small_lens_kwargs):
    lens = Camera("privacy", **small_lens_kwargs).lens  # n = 1.5, f = 12 mm
    model = fab.SurfaceModel.from_lens(lens)
    assert model.base_sag_per_mm == pytest.approx(-1 / (2 * 12.0 * 0.5))
    assert model.base_radius_mm == pytest.approx(-6.0)  # h = r²/(2R): R = −f (n − 1)


def test_height_map_phase_includes_the_object_distance(small_lens_kwargs):
    """intensity_from_height and the lens share the thin-lens phases: the lens's own height
    map gives its own sensor intensity, also for a near object."""
    lens = Camera(
        "privacy", object_distance_mm=40.0, initial_coefficients_um=COEFFS, **small_lens_kwargs
    ).lens.eval()
    with torch.no_grad():
        direct = lens.field_intensity().double()
        height = lens.height_map_um().double().numpy()
    from_height = fab.intensity_from_height(lens, height).double()
    assert float(fab.psf_correlation(from_height.numpy(), direct.numpy()).min()) > 0.9999

"""PSF physics against closed forms: Airy pattern, Fresnel integrals, energy, defocus."""

import math

import numpy as np
import pytest
import torch
from scipy.special import fresnel, j1

from optics import functional as fn
from optics.lens import ZernikeLens


@pytest.mark.parametrize("wavelength_nm", [460.0, 550.0, 640.0])
def test_airy_first_dark_ring(small_lens_kwargs, wavelength_nm):
    """Aberration-free lens focused on the sensor: first zero at 1.22 λ z / D, within one pixel."""
    lens = ZernikeLens(wavelengths_nm=[wavelength_nm], trainable_indices=[], **small_lens_kwargs)
    lens.eval()
    psf = lens().detach().double()[0]
    k = psf.shape[-1]
    assert float(psf.sum()) == pytest.approx(1.0, abs=1e-6)
    assert tuple(np.unravel_index(int(psf.argmax()), psf.shape)) == (k // 2, k // 2)
    pitch_um = small_lens_kwargs["sensor_pitch_um"]
    diameter_um = small_lens_kwargs["pupil_grid"] * small_lens_kwargs["pupil_pitch_um"]
    z_um = small_lens_kwargs["sensor_distance_mm"] * 1e3
    expected_um = 1.22 * wavelength_nm * 1e-3 * z_um / diameter_um
    # first local minimum of the profile along +x, +y, −x, −y
    for profile in (
        psf[k // 2, k // 2 :],
        psf[k // 2 :, k // 2],
        psf[k // 2, : k // 2 + 1].flip(0),
    ):
        first_min = next(i for i in range(1, len(profile) - 1) if profile[i] <= profile[i + 1])
        assert abs(first_min * pitch_um - expected_um) <= pitch_um
    # and the whole pattern matches [2 J1(v)/v]², v = π D r / (λ z)
    c = (torch.arange(k, dtype=torch.float64) - k // 2) * pitch_um
    r = torch.sqrt(c[:, None] ** 2 + c[None, :] ** 2).numpy()
    v = np.pi * diameter_um * r / (wavelength_nm * 1e-3 * z_um)
    airy = np.where(v == 0, 1.0, (2 * j1(np.maximum(v, 1e-12)) / np.maximum(v, 1e-12)) ** 2)
    window = slice(k // 2 - 20, k // 2 + 21)
    corr = np.corrcoef(psf.numpy()[window, window].ravel(), airy[window, window].ravel())[0, 1]
    assert corr > 0.995


def test_fresnel_square_aperture_matches_fresnel_integrals():
    """Plane wave through a square aperture, propagated 5 mm: axis profile vs Fresnel integrals."""
    n, pitch, lam, z = 1024, 2e-6, 0.5e-6, 5e-3
    half = 100  # aperture: |x|, |y| <= 100 samples → width 201 samples
    c = np.arange(n) - n // 2
    inside = (np.abs(c) <= half)[:, None] & (np.abs(c) <= half)[None, :]
    field = torch.from_numpy(inside.astype(np.complex128))
    out = fn.propagate(field, pitch, torch.tensor([lam], dtype=torch.float64), z)
    intensity = out.abs().square()[n // 2].numpy()

    w = (2 * half + 1) * pitch
    x = c * pitch
    scale = math.sqrt(2 / (lam * z))

    def factor(u):
        s1, c1 = fresnel(-scale * (w / 2 + u))
        s2, c2 = fresnel(scale * (w / 2 - u))
        return ((c2 - c1) ** 2 + (s2 - s1) ** 2) / 2

    reference = factor(x) * factor(np.zeros(1))
    region = np.abs(x) <= 0.75 * w  # lit area and the first part of the shadow
    rel = np.linalg.norm(intensity[region] - reference[region]) / np.linalg.norm(reference[region])
    assert rel < 0.05


def test_propagation_conserves_energy():
    rng = np.random.default_rng(1)
    field = torch.from_numpy(rng.normal(size=(2, 128, 128)) + 1j * rng.normal(size=(2, 128, 128)))
    lam = torch.tensor([450e-9, 650e-9], dtype=torch.float64)
    for method in ("fresnel", "angular_spectrum"):
        out = fn.propagate(field, 5e-6, lam, 20e-3, method=method)
        # evanescent components are dropped by the angular spectrum; none exist at this pitch
        np.testing.assert_allclose(
            out.abs().square().sum((-1, -2)), field.abs().square().sum((-1, -2)), rtol=1e-10
        )


def test_separable_equals_padded_2d_propagation():
    rng = np.random.default_rng(2)
    n, n_pad, n_out = 48, 160, 70
    field = torch.from_numpy(rng.normal(size=(2, n, n)) + 1j * rng.normal(size=(2, n, n)))
    lam = torch.tensor([460e-9, 640e-9], dtype=torch.float64)
    fast = fn.propagate_fresnel_separable(field, 4e-6, lam, 8e-3, n_pad, n_out)
    padded = torch.nn.functional.pad(field, (0, n_pad - n, 0, n_pad - n))
    full = fn.propagate(padded, 4e-6, lam, 8e-3)
    idx = (n // 2 - n_out // 2 + torch.arange(n_out)) % n_pad
    np.testing.assert_allclose(fast, full[:, idx][:, :, idx], atol=1e-10)


def test_angular_spectrum_close_to_fresnel_for_paraxial_lens(small_lens_kwargs):
    a = ZernikeLens(trainable_indices=[], **small_lens_kwargs).eval()
    b = ZernikeLens(
        trainable_indices=[], propagation="angular_spectrum", **small_lens_kwargs
    ).eval()
    pa, pb = a().detach(), b().detach()
    for i in range(3):
        assert np.corrcoef(pa[i].ravel(), pb[i].ravel())[0, 1] > 0.999


@pytest.mark.parametrize("propagation", ["fresnel", "angular_spectrum"])
def test_any_pupil_field_uses_the_lens_propagation(small_lens_kwargs, propagation):
    # fabricated surfaces (optics.fabrication) go through intensity_from_field: for the lens's
    # own pupil field it must give exactly the lens's (x-prepadded, for Fresnel) fast path
    lens = ZernikeLens(trainable_indices=[], propagation=propagation, **small_lens_kwargs).eval()
    with torch.no_grad():
        fast = lens.field_intensity()
        general = lens.intensity_from_field(lens.pupil_field())
    torch.testing.assert_close(general, fast, rtol=1e-5, atol=1e-6 * float(fast.max()))


def test_defocus_monotonically_widens_psf(small_lens_kwargs):
    widths = []
    for defocus_um in [0.0, 0.1, 0.2, 0.4, 0.8]:
        lens = ZernikeLens(
            trainable_indices=[4],
            initial_defocus_um=defocus_um,
            fabrication_tolerance_um=0,
            **small_lens_kwargs,
        )
        psf = lens().detach().double()
        k = psf.shape[-1]
        c = torch.arange(k, dtype=torch.float64) - k // 2
        r2 = c[:, None] ** 2 + c[None, :] ** 2
        widths.append((psf * r2).sum((-1, -2)))
    widths = torch.stack(widths)  # (5, Λ)
    assert (widths[1:] > widths[:-1]).all(), widths


def test_area_resample_matrix_conserves_energy():
    a = fn.area_resample_matrix(900, 3.0, 256, 10.5, dtype=torch.float64)  # as the default lens
    # every input cell inside the output window is fully distributed
    col = a.sum(0)
    assert torch.allclose(col[1:-4], torch.ones_like(col[1:-4]))  # cells inside the sensor window
    assert torch.allclose(a.sum(1), torch.full((256,), 3.5, dtype=torch.float64))

"""PSF physics against closed forms: Airy pattern, Fresnel integrals, energy, defocus."""

import numpy as np
import pytest
import torch
from scipy.special import j1

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

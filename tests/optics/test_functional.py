"""optics.functional: linear convolution, sensor-side maths (response, quantisation, noise),
propagation and resampling against closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d
from scipy.special import fresnel

from optics import functional as fn


@pytest.mark.parametrize("k", [7, 8])
def test_delta_returns_psf(k):
    gen = torch.Generator().manual_seed(0)
    psf = torch.rand(3, k, k, generator=gen, dtype=torch.float64)
    img = torch.zeros(1, 3, 32, 32, dtype=torch.float64)
    img[0, :, 12, 20] = 1.0
    out = fn.linear_convolve(img, psf)[0]
    top, left = 12 - k // 2, 20 - k // 2
    np.testing.assert_allclose(out[:, top : top + k, left : left + k], psf, atol=1e-12)
    assert float(out.sum()) == pytest.approx(float(psf.sum()))


def test_no_wrap_around():
    img = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    img[0, 0, 0, 0] = 1.0  # top-left corner
    psf = torch.ones(1, 31, 31, dtype=torch.float64)  # reaches 15 px in every direction
    out = fn.linear_convolve(img, psf)[0, 0]
    assert out[:16, :16].min() > 0.99
    assert out[16:, :].abs().max() < 1e-12 and out[:, 16:].abs().max() < 1e-12
    # a circular convolution would put light in the opposite corner
    circ = torch.fft.ifft2(torch.fft.fft2(img[0, 0]) * torch.fft.fft2(torch.ones(32, 32))).real
    assert circ[-1, -1] > 0.5


def test_matches_scipy_convolve2d_same():
    rng = np.random.default_rng(3)
    img, psf = rng.random((20, 27)), rng.random((9, 9))
    ours = fn.linear_convolve(torch.from_numpy(img)[None, None], torch.from_numpy(psf)[None])
    np.testing.assert_allclose(ours[0, 0], convolve2d(img, psf, mode="same"), atol=1e-12)


def test_response_round_trips():
    x = torch.linspace(0, 1, 101, dtype=torch.float64)
    np.testing.assert_allclose(fn.srgb_decode(fn.srgb_encode(x)), x, atol=1e-12)
    np.testing.assert_allclose(fn.gamma_decode(fn.gamma_encode(x, 2.2), 2.2), x, atol=1e-12)
    assert float(fn.srgb_encode(torch.tensor(0.18))) == pytest.approx(0.4614, abs=1e-3)


def test_quantisation_straight_through():
    x = torch.rand(1000, dtype=torch.float64, requires_grad=True)
    q = fn.quantize_ste(x, 8)
    np.testing.assert_allclose((q * 255).detach(), torch.round(x.detach() * 255), atol=1e-9)
    q.sum().backward()
    assert torch.all(x.grad == 1)


def test_noise_statistics():
    gen = torch.Generator().manual_seed(0)
    x = torch.full((200_000,), 0.4, dtype=torch.float64)
    y = fn.sensor_noise(x, 0.02, 0.0, gen)
    assert float(y.std()) == pytest.approx(0.02, rel=0.02)
    y = fn.sensor_noise(x, 0.02, 0.01, gen)  # Poisson–Gaussian: var = a·x + σ²
    assert float(y.var()) == pytest.approx(0.01 * 0.4 + 0.02**2, rel=0.02)


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


def test_area_resample_matrix_conserves_energy():
    a = fn.area_resample_matrix(900, 3.0, 256, 10.5, dtype=torch.float64)  # as the default lens
    # every input cell inside the output window is fully distributed
    col = a.sum(0)
    assert torch.allclose(col[1:-4], torch.ones_like(col[1:-4]))  # cells inside the sensor window
    assert torch.allclose(a.sum(1), torch.full((256,), 3.5, dtype=torch.float64))


def test_phase_step_excess_is_the_closed_form_hinge_of_a_ramp():
    # a ramp of s rad per sample along x in a 5×5 mask: 4 steps per row × 5 rows, none in y
    s, limit = 3.5, 0.9 * math.pi
    x = torch.arange(8.0)
    phase = (s * x).expand(2, 8, 8).clone()  # two wavelengths
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[1:6, 1:6] = True
    expected = 2 * 20 * (s - limit) ** 2
    assert float(fn.phase_step_excess(phase, mask, limit)) == pytest.approx(expected, rel=1e-5)
    assert float(fn.max_phase_step(phase, mask).max()) == pytest.approx(s)
    assert float(fn.phase_step_excess(phase * 0.5, mask, limit)) == 0.0  # sampled: no penalty

"""Linear convolution, sensor model and end-to-end gradients."""

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from optics import Camera
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


def test_ideal_camera_is_identity_without_noise():
    cam = Camera("ideal", read_noise_std=0.0, quantize_bits=None)
    img = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    np.testing.assert_allclose(cam.double()(img), img, atol=1e-9)
    assert cam.psf() is None


def test_lowres_camera_bins_pixels():
    cam = Camera(
        "lowres",
        lowres_size=4,
        read_noise_std=0.0,
        quantize_bits=None,
        upsample_mode="nearest",
        response="linear",
        linearize_input=False,
    )
    img = torch.rand(1, 3, 16, 16)
    out = cam(img)
    assert out.shape == img.shape
    blocks = img.reshape(1, 3, 4, 4, 4, 4).mean((3, 5))
    np.testing.assert_allclose(out[..., ::4, ::4], blocks, atol=1e-6)


def test_gradcheck_coefficients_to_captured_image(small_lens_kwargs):
    kw = dict(
        small_lens_kwargs,
        pupil_grid=16,
        pad_factor=8,
        sensor_distance_mm=3.0,
        psf_size_px=8,
        num_zernike=10,
    )
    cam = Camera(
        "privacy",
        read_noise_std=0.0,
        quantize_bits=None,
        fabrication_tolerance_um=0.0,
        init_std_um=0.05,
        **kw,
    ).double()
    img = torch.rand(1, 3, 10, 10, dtype=torch.float64) * 0.8 + 0.1

    def captured(coefficients):
        params = {"lens.trainable_coefficients_um": coefficients}
        return torch.func.functional_call(cam, params, (img,))

    c0 = cam.lens.trainable_coefficients_um.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(captured, (c0,), eps=1e-6, atol=1e-6, rtol=1e-4)

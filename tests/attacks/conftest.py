"""Images, PSFs and the periodic blur shared by the attack tests (the small camera is in
tests/conftest.py)."""

import numpy as np
import pytest
import torch

from attacks.otf import psf_to_otf


@pytest.fixture
def astronaut64() -> torch.Tensor:
    """(1, 3, 64, 64) float64 in [0, 1]."""
    from skimage import data, transform

    img = transform.resize(data.astronaut(), (64, 64), anti_aliasing=True)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].double()


def _gaussian_psf(size: int, sigma: float, channels: int = 3) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum())[None].repeat(channels, 1, 1)


@pytest.fixture
def gaussian_psf():
    """Factory (size, sigma, channels=3) → (C, K, K) float64 Gaussian at K//2, summing to 1."""
    return _gaussian_psf


def _circular_blur(x: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
    return torch.fft.irfft2(torch.fft.rfft2(x) * psf_to_otf(psf, x.shape[-2:]), s=x.shape[-2:])


@pytest.fixture
def circular_blur():
    """(B, C, H, W) images, (C, K, K) PSF → the periodic (circular) blur, as the FFT models it."""
    return _circular_blur

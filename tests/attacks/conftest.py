"""Small, fast cameras and images shared by the attack tests."""

import numpy as np
import pytest
import torch

# 64² pupil at 4 µm, 8× padding, 12 mm to the sensor: well sampled (see tests/optics); a 32 px
# PSF at 8 µm pixels, 15 Zernike terms with a random 0.1 µm init (0.2 µm aliases).
SMALL_CAMERA = dict(
    pupil_grid=64,
    pupil_pitch_um=4.0,
    pad_factor=8,
    sensor_distance_mm=12.0,
    psf_size_px=32,
    sensor_pitch_um=8.0,
    num_zernike=15,
    material=1.5,
    init_std_um=0.1,
)


@pytest.fixture
def small_camera():
    from optics import Camera

    return Camera("privacy", **SMALL_CAMERA)


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

"""Small, fast optics configurations shared by the optics tests."""

from types import MappingProxyType

import pytest

# 64² pupil at 4 µm (D = 256 µm), 8× padding, lens–sensor 12 mm: Fresnel transfer function
# well sampled for 460–640 nm (λz/L ≤ 3.75 µm ≤ 4 µm), the Airy ring spans 6–9 samples.
SMALL_LENS = dict(
    pupil_grid=64,
    pupil_pitch_um=4.0,
    pad_factor=8,
    sensor_distance_mm=12.0,
    psf_size_px=64,
    sensor_pitch_um=4.0,
    num_zernike=15,
    material=1.5,
)


@pytest.fixture(scope="session")
def small_lens_kwargs():
    return MappingProxyType(SMALL_LENS)  # read-only: shared by every test

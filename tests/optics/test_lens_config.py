"""optics.lens_config: validation, resolved defaults, initial coefficients."""

import math

import numpy as np
import pytest

from optics.lens import LensConfig, ZernikeLens, aperture_layout
from optics.lens_config import initial_coefficients


def test_defaults_are_resolved(small_lens_kwargs):
    config = LensConfig(**small_lens_kwargs)
    assert config.focal_length_resolved_mm == 12.0  # object at infinity: f = z
    assert config.n_pad == 512 and config.n_out % 2 == 0
    near = config.replace(object_distance_mm=60.0)
    assert near.focal_length_resolved_mm == pytest.approx(1 / (1 / 12 + 1 / 60))
    auto = config.replace(sensor_pitch_um=None)
    assert auto.sensor_pitch_resolved_um == 64 * 4.0 / 64
    assert config.wavelengths_nm == (460.0, 550.0, 640.0)


def test_lens_takes_a_config_or_keywords(small_lens_kwargs):
    config = LensConfig(**small_lens_kwargs)
    a, b = ZernikeLens(config), ZernikeLens(**small_lens_kwargs)
    assert a.config == b.config and a.focal_length_mm == config.focal_length_resolved_mm
    assert ZernikeLens(config, num_zernike=6).num_zernike == 6


@pytest.mark.parametrize(
    "override, match",
    [
        ({"pupil_grid": 63}, "pupil_grid"),
        ({"wavelengths_nm": []}, "wavelengths_nm"),
        ({"num_zernike": 0}, "num_zernike"),
        ({"propagation": "ray"}, "propagation"),
        ({"pad_factor": 0.5}, "pad_factor"),
        ({"sensor_pitch_um": 1.0}, "finer than pupil_pitch_um"),
        ({"psf_size_px": 1024}, "PSF larger than the field"),
        ({"pupil_pitch_um": float("nan")}, "pupil_pitch_um"),
    ],
)
def test_invalid_settings_name_the_option(small_lens_kwargs, override, match):
    with pytest.raises(ValueError, match=match):
        LensConfig(**{**small_lens_kwargs, **override})


def test_initial_coefficients(small_lens_kwargs):
    config = LensConfig(
        **small_lens_kwargs,
        initial_coefficients_um={5: 0.3},
        initial_defocus_um=0.5,
        trainable_indices=[7, 5],
    )
    init, trainable = initial_coefficients(config, 16)
    assert trainable == (5, 7)
    assert init[4] == 0.3 and init[3] == 0.5 and init.shape == (16,)
    noisy, _ = initial_coefficients(config.replace(init_std_um=0.1, init_seed=3), 16)
    again, _ = initial_coefficients(config.replace(init_std_um=0.1, init_seed=3), 16)
    np.testing.assert_array_equal(noisy, again)  # seeded
    assert (noisy != init).sum() == 2  # only the trainable terms
    with pytest.raises(ValueError, match="trainable_indices"):
        initial_coefficients(config.replace(trainable_indices=[99]), 16)
    with pytest.raises(ValueError, match="at most num_zernike"):
        initial_coefficients(config.replace(initial_coefficients_um=[0.0] * 16), 16)


def test_base_phase_is_a_thin_lens_focused_on_the_sensor(small_lens_kwargs):
    """At the design wavelength the base surface's phase is −k r²/(2f) (closed form)."""
    lens = ZernikeLens(**small_lens_kwargs)  # constant n = 1.5, f = z = 12 mm
    layout = aperture_layout(lens.pupil_grid)
    r2_m2 = (layout["x"] ** 2 + layout["y"] ** 2) * (lens.pupil_pitch_um * 1e-6) ** 2
    k = 2 * math.pi / 550e-9
    np.testing.assert_allclose(lens._base_phase_unwrapped[1], -k * r2_m2 / (2 * 12e-3), rtol=1e-12)
    np.testing.assert_allclose(lens._base_height_m, -r2_m2 / (2 * 12e-3 * 0.5), rtol=1e-12)

"""optics.thin_lens against closed forms: thin-lens equation, paraboloid sag, phases."""

import math

import numpy as np
import pytest

from optics import thin_lens


def test_focal_length_images_the_object_on_the_sensor():
    assert thin_lens.focus_focal_length_mm(25.0, None) == 25.0
    f = thin_lens.focus_focal_length_mm(25.0, 100.0)
    assert 1 / f == pytest.approx(1 / 25 + 1 / 100)  # 1/f = 1/z_i + 1/z_o


def test_base_lens_sag_focuses_at_f():
    # a plano-convex thin lens: the phase −k r²/(2f) of a lens of focal length f equals
    # k (n − 1) h_base for h_base = a r², a = −1/(2 f (n − 1))
    f_mm, n = 20.0, 1.46
    a = thin_lens.base_sag_per_mm(f_mm, n)
    assert a == pytest.approx(-1 / (2 * f_mm * (n - 1)))
    assert thin_lens.base_sag_per_mm(f_mm, n, enabled=False) == 0.0
    lam_nm, r_m = np.array([550.0]), 1e-3
    h_m = 1e3 * a * r_m**2
    phase = thin_lens.height_phase_per_m(lam_nm, np.array([n])) * h_m
    k = 2 * math.pi / 550e-9
    assert phase[0] == pytest.approx(-k * r_m**2 / (2 * f_mm * 1e-3))


def test_object_and_ideal_lens_phases():
    r2 = np.array([0.0, 1e-6])
    lam = np.array([500.0, 1000.0])
    phase = thin_lens.object_phase_rad(r2, lam, 100.0)
    assert phase.shape == (2, 2)
    assert phase[0, 1] == pytest.approx(2 * math.pi / 500e-9 * 1e-6 / 0.2)
    assert phase[1, 1] == pytest.approx(phase[0, 1] / 2)  # k ∝ 1/λ
    assert not thin_lens.object_phase_rad(r2, lam, None).any()  # at infinity: flat
    ideal = thin_lens.ideal_lens_phase_rad(r2, lam, 100.0)
    np.testing.assert_allclose(ideal, -phase)

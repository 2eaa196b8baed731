"""Thin-lens phase conventions shared by the lens model and the fabrication maths.

Pure numpy functions (float64). Surface height h (µm of glass, more glass = larger h) =
h_base + Σ c_j Z_j with the optional thin plano-convex base lens h_base(r) = a·r²,
a = −1/(2 f (n(λ_d) − 1)); at wavelength λ the transmitted phase is
φ_λ = k (n(λ) − 1) h (+ k r²/(2d) for a point source at distance d), k = 2π/λ.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "base_sag_per_mm",
    "focus_focal_length_mm",
    "height_phase_per_m",
    "ideal_lens_phase_rad",
    "object_phase_rad",
    "wavenumber_per_m",
]


def wavenumber_per_m(wavelengths_nm: np.ndarray) -> np.ndarray:
    """k = 2π/λ (Λ,) in rad/m."""
    return 2 * math.pi / (np.asarray(wavelengths_nm, dtype=np.float64) * 1e-9)


def focus_focal_length_mm(sensor_distance_mm: float, object_distance_mm: float | None) -> float:
    """Thin-lens focal length imaging the object (at infinity for None) onto the sensor:
    1/f = 1/z_sensor + 1/z_object."""
    inv = 1.0 / sensor_distance_mm
    if object_distance_mm is not None:
        inv += 1.0 / object_distance_mm
    return 1.0 / inv


def base_sag_per_mm(focal_length_mm: float, n_design: float, enabled: bool = True) -> float:
    """a of the paraboloidal base lens h_base = a·r² (h, r in mm; a in 1/mm):
    a = −1/(2 f (n(λ_d) − 1)), 0 without a base lens. In metres h_base_m = 1e3·a·r_m²."""
    return -1.0 / (2.0 * focal_length_mm * (n_design - 1.0)) if enabled else 0.0


def height_phase_per_m(wavelengths_nm: np.ndarray, n_lambda: np.ndarray) -> np.ndarray:
    """Phase per metre of glass height, k (n(λ) − 1) (Λ,) in rad/m."""
    return wavenumber_per_m(wavelengths_nm) * (np.asarray(n_lambda, dtype=np.float64) - 1)


def object_phase_rad(
    r2_m2: np.ndarray, wavelengths_nm: np.ndarray, object_distance_mm: float | None
) -> np.ndarray:
    """Paraxial phase k r²/(2d) of a point source at distance d over the pupil: (Λ, *S) for r²
    (*S) in m²; zeros for an object at infinity (None)."""
    r2 = np.asarray(r2_m2, dtype=np.float64)
    k = wavenumber_per_m(wavelengths_nm).reshape(-1, *([1] * r2.ndim))
    if object_distance_mm is None:
        return np.zeros((k.shape[0], *r2.shape))
    return k * r2[None] / (2 * object_distance_mm * 1e-3)


def ideal_lens_phase_rad(
    r2_m2: np.ndarray, wavelengths_nm: np.ndarray, sensor_distance_mm: float
) -> np.ndarray:
    """Aberration-free lens: a converging (paraxial) spherical wave focused on the sensor at
    every wavelength, φ = −k r²/(2z) (Λ, *S)."""
    return -object_phase_rad(r2_m2, wavelengths_nm, sensor_distance_mm)

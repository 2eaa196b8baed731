"""Fabrication maths for lens export: analytic sag and derivatives, PSFs from any height map,
the Monte-Carlo fabrication tolerance (the figures of merit and the multi-level quantisation live
in ``optics/merit.py`` and are re-exported here).

Pure functions (numpy / torch in, numpy / torch out); files and the CLI live in
``optics/export/``. Conventions are the lens's (``optics/lens.py``): height h (µm of glass,
more glass = larger h) = h_base + Σ c_j Z_j, Z_j Noll-ordered and RMS-normalised on the disk of
radius R = N·pitch/2, θ from +x towards +y; grids FFT-centred, row 0 at +y.

The sag is evaluated analytically from the Zernike sum, derivatives included: with w = x + iy
and u = x² + y², every Noll term is Re or Im of N·w^|m|·P(u) for a polynomial P (R_n^|m|(ρ) =
ρ^|m|·P(ρ²)). Grouping the terms by |m| gives z = Σ_m Re[w^m Q_m(u)] with complex polynomials
Q_m, whose x, y and mixed xy derivatives are polynomials too — exact, no 1/ρ singularity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import functional as fn
from . import thin_lens
from .lens import ZernikeLens
from .merit import (
    QuantizedHeight,
    encircled_energy_radius_um,
    psf_correlation,
    quantize_height,
    radial_mtf,
    smallest_feature_um,
    strehl_ratio,
)
from .zernike import noll_to_nm, radial_coefficients, rms_norm

__all__ = [
    "QuantizedHeight",
    "SurfaceModel",
    "aperture_mask",
    "encircled_energy_radius_um",
    "field_to_intensity",
    "ideal_intensity",
    "intensity_from_height",
    "intensity_to_psf",
    "monte_carlo_psfs",
    "psf_correlation",
    "psf_from_height",
    "pupil_coordinates_mm",
    "quantize_height",
    "radial_mtf",
    "smallest_feature_um",
    "strehl_ratio",
    "zernike_sum_with_derivatives",
]


# --------------------------------------------------------------------------- geometry


def pupil_coordinates_mm(n: int, pitch_um: float) -> tuple[np.ndarray, np.ndarray]:
    """Sample centres (x_mm, y_mm), each (n, n), of an FFT-centred grid: x = (col − n//2)·pitch,
    y = (n//2 − row)·pitch (row 0 at +y)."""
    idx = (np.arange(n) - n // 2) * pitch_um * 1e-3
    return np.meshgrid(idx, -idx)


def _r2_m2(n: int, pitch_um: float) -> np.ndarray:
    """(n, n) squared distance from the axis of each pupil sample, m²."""
    x, y = pupil_coordinates_mm(n, pitch_um)
    return (x**2 + y**2) * 1e-6


def aperture_mask(n: int) -> np.ndarray:
    """(n, n) bool: samples strictly inside the radius-n/2 disk (the lens's aperture)."""
    i = np.arange(n) - n // 2
    return 4 * (i[None, :] ** 2 + i[:, None] ** 2) < n * n


def _radial_poly_in_u(n: int, m_abs: int) -> np.ndarray:
    """Ascending coefficients of P with R_n^|m|(ρ) = ρ^|m|·P(ρ²): R's a_s multiplies
    ρ^(n−2s) = ρ^|m|·u^((n−|m|)/2 − s)."""
    return radial_coefficients(n, m_abs)[::-1].copy()


def zernike_sum_with_derivatives(
    coefficients: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Σ_j c_j Z_j and its derivatives ∂/∂x, ∂/∂y, ∂²/∂x∂y at normalised coordinates.

    Args:
        coefficients: (J,) Noll order from Z1 (any unit; the outputs carry it).
        x, y: normalised coordinates (unit disk = normalisation radius), any equal shape S.

    Returns:
        four float64 arrays of shape S: value, d/dx, d/dy, d²/dxdy (per normalised unit).
    """
    c = np.asarray(coefficients, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    groups: dict[int, np.ndarray] = {}
    for j, cj in enumerate(c, start=1):
        if cj == 0:
            continue
        n, m = noll_to_nm(j)
        m_abs = abs(m)
        norm = rms_norm(n, m)
        # cos term = Re[f]; sin term = Im[f] = Re[−i f]
        weight = cj * norm * (1.0 if m >= 0 else -1j)
        p = weight * _radial_poly_in_u(n, m_abs)
        q = groups.get(m_abs, np.zeros(0, dtype=np.complex128))
        if q.size < p.size:
            q = np.concatenate([q, np.zeros(p.size - q.size, dtype=np.complex128)])
        q[: p.size] += p
        groups[m_abs] = q
    # f_m = w^m Q(u): f_x = m w^(m−1) Q + 2x w^m Q', f_y = i m w^(m−1) Q + 2y w^m Q',
    # f_xy = i m(m−1) w^(m−2) Q + 2(y + ix) m w^(m−1) Q' + 4xy w^m Q''. Accumulate the sums
    # over m of each w-power/polynomial product, multiply by the x, y factors once at the end.
    poly = np.polynomial.polynomial
    terms: dict[int, np.ndarray] = {}  # |m| → (3, deg + 1) coefficients of Q, Q', Q''
    for m_abs, q in groups.items():
        coef = np.zeros((3, q.size), dtype=np.complex128)
        coef[0] = q
        dq = poly.polyder(q)
        coef[1, : dq.size] = dq
        if dq.size > 1:
            coef[2, : dq.size - 1] = poly.polyder(dq)
        terms[m_abs] = coef
    shape = x.shape
    x, y = x.ravel(), y.ravel()
    out = np.empty((4, x.size))
    chunk = 16384  # points per pass: the temporaries stay in cache
    for i in range(0, x.size, chunk):
        out[:, i : i + chunk] = _zernike_chunk(terms, x[i : i + chunk], y[i : i + chunk])
    return tuple(a.reshape(shape) for a in out)  # type: ignore[return-value]


def _zernike_chunk(terms: dict[int, np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(4, P): value, d/dx, d/dy, d²/dxdy of Σ_m Re[w^m Q_m(u)] at 1-D points x, y, with
    ``terms[m]`` the (3, D) ascending coefficients of Q_m, Q_m', Q_m''."""
    u = x * x + y * y
    w = x + 1j * y
    zero = np.zeros(x.shape, dtype=np.complex128)
    z, s1, s2, t1, t2, t3 = (zero.copy() for _ in range(6))
    degree = max((c.shape[1] for c in terms.values()), default=1)
    u_pow = np.ones((degree, x.size))  # u^k: the polynomials become small matmuls
    for k in range(1, degree):
        u_pow[k] = u_pow[k - 1] * u
    w_m2, w_m1, w_m = zero + 1, zero + 1, zero + 1  # w^(m−2), w^(m−1), w^m (clamped at w^0)
    for m_abs in range(max(terms, default=-1) + 1):
        if m_abs >= 1:
            w_m2, w_m1, w_m = w_m1, w_m, w_m * w
        coef = terms.get(m_abs)
        if coef is None:
            continue
        n_used = coef.shape[1]
        vals = coef.real @ u_pow[:n_used] + 1j * (coef.imag @ u_pow[:n_used])
        qv, dqv, d2qv = vals
        z += w_m * qv
        s2 += w_m * dqv
        if n_used > 2:
            t3 += w_m * d2qv
        if m_abs >= 1:
            s1 += m_abs * (w_m1 * qv)
            t2 += m_abs * (w_m1 * dqv)
        if m_abs >= 2:
            t1 += (m_abs * (m_abs - 1)) * (w_m2 * qv)
    zx = (s1 + 2 * x * s2).real
    zy = (1j * s1 + 2 * y * s2).real
    zxy = (1j * t1 + 2 * (y + 1j * x) * t2 + 4 * x * y * t3).real
    return np.stack([z.real, zx, zy, zxy])


@dataclass(frozen=True)
class SurfaceModel:
    """Analytic lens surface: h(x, y) = a·r² + Σ_j c_j Z_j(x/R, y/R).

    ``coefficients_um`` (J,) Noll from Z1 (µm of height); ``normalisation_radius_mm`` R;
    ``base_sag_per_mm`` a (h_base = a·r² in mm, a = −1/(2 f (n(λ_d) − 1)); 0 without a base lens).
    """

    coefficients_um: np.ndarray
    normalisation_radius_mm: float
    base_sag_per_mm: float = 0.0

    @classmethod
    def from_lens(cls, lens: ZernikeLens) -> SurfaceModel:
        n_d = float(lens.material.refractive_index(lens.design_wavelength_nm))
        a = thin_lens.base_sag_per_mm(lens.focal_length_mm, n_d, lens.base_lens)
        return cls(
            coefficients_um=lens.coefficients_um().detach().double().cpu().numpy(),
            normalisation_radius_mm=lens.pupil_grid * lens.pupil_pitch_um / 2 * 1e-3,
            base_sag_per_mm=a,
        )

    @property
    def base_radius_mm(self) -> float:
        """Vertex radius of the (paraboloidal, conic −1) base: h_base = r²/(2·radius)."""
        return math.inf if self.base_sag_per_mm == 0 else 1.0 / (2.0 * self.base_sag_per_mm)

    def sag_mm(
        self, x_mm: np.ndarray, y_mm: np.ndarray, include_base: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(z_mm, dz/dx, dz/dy, d²z/dxdy [1/mm]) at (x_mm, y_mm); slopes in mm/mm."""
        r_mm = self.normalisation_radius_mm
        z, zx, zy, zxy = zernike_sum_with_derivatives(
            self.coefficients_um * 1e-3, np.asarray(x_mm) / r_mm, np.asarray(y_mm) / r_mm
        )
        zx, zy, zxy = zx / r_mm, zy / r_mm, zxy / r_mm**2
        if include_base and self.base_sag_per_mm:
            a = self.base_sag_per_mm
            z = z + a * (np.square(x_mm) + np.square(y_mm))
            zx = zx + 2 * a * np.asarray(x_mm)
            zy = zy + 2 * a * np.asarray(y_mm)
        return z, zx, zy, zxy


# --------------------------------------------------------------------------- PSFs


def field_to_intensity(lens: ZernikeLens, field: torch.Tensor) -> torch.Tensor:
    """Pupil field (Λ, N, N) → sensor-plane intensity |u|² (Λ, M, M) at the pupil pitch
    (M = ``lens.n_out``), by the lens's own propagation (:meth:`ZernikeLens.intensity_from_field`).
    """
    return lens.intensity_from_field(field)


def intensity_to_psf(lens: ZernikeLens, intensity: torch.Tensor) -> torch.Tensor:
    """Intensity (Λ, M, M) at the pupil pitch → PSF (Λ, K, K) on the sensor pixels, area
    resampled and normalised to sum 1 per wavelength (as ``lens.forward``)."""
    return fn.psf_intensity_to_sensor(intensity, lens.resample_matrix.to(intensity.dtype))


def _field_from_phase(
    phase_rad: np.ndarray, mask: np.ndarray, device: torch.device
) -> torch.Tensor:
    """exp(iφ) inside the aperture, 0 outside; φ (Λ, N, N) float64, wrapped before the cast."""
    phase = torch.from_numpy(np.remainder(phase_rad, 2 * math.pi)).float().to(device)
    field = torch.polar(torch.ones_like(phase), phase)
    return field * torch.from_numpy(mask).to(device)


@torch.no_grad()
def intensity_from_height(lens: ZernikeLens, height_um: np.ndarray) -> torch.Tensor:
    """Sensor-plane intensity (Λ, M, M) at the pupil pitch of a lens whose surface is
    ``height_um`` (N, N), µm, base lens included (as ``lens.height_map_um()``); values outside
    the aperture are ignored. Phase φ_λ = 2π/λ·(n(λ) − 1)·h (+ k r²/2d for a finite object
    distance d), computed in float64 and wrapped before the float32 field."""
    n = lens.pupil_grid
    if np.shape(height_um) != (n, n):
        raise ValueError(
            f"height map must be ({n}, {n}) like the pupil grid, got {np.shape(height_um)}"
        )
    mask = aperture_mask(n)
    h_m = np.where(mask, np.asarray(height_um, dtype=np.float64), 0.0) * 1e-6
    per_m = thin_lens.height_phase_per_m(lens.wavelengths_nm, lens.refractive_indices)
    phase = per_m[:, None, None] * h_m[None]
    if lens.object_distance_mm is not None:
        phase = phase + thin_lens.object_phase_rad(
            _r2_m2(n, lens.pupil_pitch_um), lens.wavelengths_nm, lens.object_distance_mm
        )
    device = lens.fixed_coefficients_um.device
    return field_to_intensity(lens, _field_from_phase(phase, mask, device))


@torch.no_grad()
def psf_from_height(lens: ZernikeLens, height_um: np.ndarray) -> torch.Tensor:
    """PSF (Λ, K, K) of the lens with surface ``height_um`` (see :func:`intensity_from_height`)."""
    return intensity_to_psf(lens, intensity_from_height(lens, height_um))


@torch.no_grad()
def ideal_intensity(lens: ZernikeLens) -> torch.Tensor:
    """Intensity (Λ, M, M) of the aberration-free lens with the same aperture: a converging
    (paraxial) spherical wave focused on the sensor at every wavelength, φ = −k r²/(2z)."""
    n = lens.pupil_grid
    phase = thin_lens.ideal_lens_phase_rad(
        _r2_m2(n, lens.pupil_pitch_um), lens.wavelengths_nm, lens.sensor_distance_mm
    )
    device = lens.fixed_coefficients_um.device
    return field_to_intensity(lens, _field_from_phase(phase, aperture_mask(n), device))


# --------------------------------------------------------------------------- tolerance


def monte_carlo_psfs(
    lens: ZernikeLens,
    height_um: np.ndarray,
    nominal_psf: np.ndarray,
    reference_intensity: np.ndarray,
    draws: int,
    tolerance_um: float,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """PSF spread under fabrication error: ``draws`` surfaces with independent uniform height
    errors in [−tol, +tol] on every pupil sample (as the lens adds in training).

    Returns numpy arrays: ``strehl`` (D, Λ) against ``reference_intensity`` (the aberration-free
    lens, see :func:`ideal_intensity`), ``correlation`` (D, Λ) of each PSF to ``nominal_psf``,
    ``mean_psf`` / ``std_psf`` (Λ, K, K).
    """
    rng = np.random.default_rng(seed)
    strehl, corr, psfs = [], [], []
    for _ in range(draws):
        noise = rng.uniform(-tolerance_um, tolerance_um, size=np.shape(height_um))
        intensity = intensity_from_height(lens, height_um + noise)
        psf = intensity_to_psf(lens, intensity).double().cpu().numpy()
        strehl.append(strehl_ratio(intensity.double().cpu().numpy(), reference_intensity))
        corr.append(psf_correlation(psf, nominal_psf))
        psfs.append(psf)
    nominal_psf = np.asarray(nominal_psf, dtype=np.float64)
    stack = np.stack(psfs) if psfs else nominal_psf[None]
    lam = len(nominal_psf)
    return {
        "strehl": np.array(strehl).reshape(draws, lam),
        "correlation": np.array(corr).reshape(draws, lam),
        "mean_psf": stack.mean(0),
        "std_psf": stack.std(0) if psfs else np.zeros_like(nominal_psf),
    }

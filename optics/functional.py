"""Pure optics maths: tensors in, tensors out. SI units (metres) unless a name says otherwise.

Grid convention (shared by the pupil, the propagated field and the sensor): an axis of n samples
with pitch d has sample i centred at (i − n//2)·d, i.e. FFT-centred, the optical axis on sample
n//2. Arrays are (row, column) = (y, x) with row 0 at the top (+y), as images are displayed and
as Zemax Grid Sag files are written. Fields use the e^{+ikz} convention: glass adds +phase.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch

__all__ = [
    "angular_spectrum_transfer_function",
    "area_resample",
    "area_resample_matrix",
    "check_fresnel_sampling",
    "fresnel_transfer_function_1d",
    "gamma_decode",
    "gamma_encode",
    "linear_convolve",
    "max_phase_step",
    "propagate",
    "propagate_fresnel_separable",
    "psf_intensity_to_sensor",
    "quantize_ste",
    "sensor_noise",
    "srgb_decode",
    "srgb_encode",
]


# --------------------------------------------------------------------------- propagation


def fresnel_transfer_function_1d(
    n_pad: int, pitch_m: float, wavelengths_m: torch.Tensor, distance_m: float
) -> torch.Tensor:
    """1-D factor of the Fresnel transfer function, exp(−iπλz f²), FFT frequency order.

    The 2-D transfer function is exp(ikz)·H(fx)·H(fy); the constant exp(ikz) is dropped
    (it does not change intensities).

    Returns:
        complex tensor (Λ, n_pad) in the complex dtype matching ``wavelengths_m``.
    """
    f = torch.fft.fftfreq(n_pad, d=pitch_m, dtype=torch.float64, device=wavelengths_m.device)
    lam = wavelengths_m.to(torch.float64)[:, None]
    # Reduce the phase modulo 2π in float64 before casting: it reaches thousands of radians.
    phase = torch.remainder(-math.pi * lam * distance_m * f[None, :] ** 2, 2 * math.pi)
    return torch.polar(torch.ones_like(phase), phase).to(_complex_of(wavelengths_m.dtype))


def angular_spectrum_transfer_function(
    n_pad: int, pitch_m: float, wavelengths_m: torch.Tensor, distance_m: float
) -> torch.Tensor:
    """Exact scalar transfer function exp(i2πz(√(1/λ² − f²) − 1/λ)); evanescent waves removed.

    Returns:
        complex tensor (Λ, n_pad, n_pad).
    """
    f = torch.fft.fftfreq(n_pad, d=pitch_m, dtype=torch.float64, device=wavelengths_m.device)
    f2 = f[None, :, None] ** 2 + f[None, None, :] ** 2
    inv_lam2 = (1.0 / wavelengths_m.to(torch.float64)[:, None, None]) ** 2
    root = torch.sqrt(torch.clamp(inv_lam2 - f2, min=0.0))
    # √(a) − √(b) written as (a − b)/(√a + √b) keeps float64 precision for small f.
    phase = -2 * math.pi * distance_m * f2 / (torch.sqrt(inv_lam2) + root)
    h = torch.polar((f2 < inv_lam2).to(torch.float64), torch.remainder(phase, 2 * math.pi))
    return h.to(_complex_of(wavelengths_m.dtype))


def propagate(
    field: torch.Tensor,
    pitch_m: float,
    wavelengths_m: torch.Tensor,
    distance_m: float,
    method: str = "fresnel",
) -> torch.Tensor:
    """Free-space propagation by the transfer-function method on the field's own (periodic) grid.

    Pad the field yourself: the convolution is circular on the given window.

    Args:
        field: complex (Λ, N, N) (or (N, N) with one wavelength).
        wavelengths_m: (Λ,) real tensor.
        method: "fresnel" (paraxial transfer function) or "angular_spectrum" (exact).

    Returns:
        complex (Λ, N, N).
    """
    squeeze = field.dim() == 2
    if squeeze:
        field = field[None]
    n = field.shape[-1]
    if field.shape[-2] != n:
        raise ValueError(f"propagate expects a square field, got {tuple(field.shape)}")
    real = wavelengths_m.to(field.real.dtype)
    if method == "fresnel":
        h1 = fresnel_transfer_function_1d(n, pitch_m, real, distance_m)
        tf = h1[:, :, None] * h1[:, None, :]
    elif method == "angular_spectrum":
        tf = angular_spectrum_transfer_function(n, pitch_m, real, distance_m)
    else:
        raise ValueError(
            f"unknown propagation method {method!r}: use 'fresnel' or 'angular_spectrum'"
        )
    out = torch.fft.ifft2(torch.fft.fft2(field) * tf)
    return out[0] if squeeze else out


def _centered_indices(n_pupil: int, n_pad: int, n_out: int, device: torch.device) -> torch.Tensor:
    """Indices (into an n_pad periodic grid whose index k sits at (k − n_pupil//2)·d) of the n_out
    samples centred on the axis."""
    return (n_pupil // 2 - n_out // 2 + torch.arange(n_out, device=device)) % n_pad


def propagate_fresnel_separable(
    field: torch.Tensor,
    pitch_m: float,
    wavelengths_m: torch.Tensor,
    distance_m: float,
    n_pad: int,
    n_out: int,
) -> torch.Tensor:
    """Fresnel transfer-function propagation of a zero-padded field, cropped to the centre.

    Equal to padding the (N, N) field to (n_pad, n_pad), ``propagate(..., "fresnel")`` and
    cropping the central (n_out, n_out) window, but cheaper: the Fresnel transfer function is
    separable, so the 2-D circular convolution is a 1-D one along x on the N non-zero rows,
    cropped to n_out columns, then a 1-D one along y on those n_out columns. That is
    2·(N + n_out) FFTs of length n_pad instead of 4·n_pad, and the zero rows are never stored.

    Args:
        field: complex (Λ, N, N) pupil field, sample i at (i − N//2)·pitch; or (Λ, N, n_pad)
            already zero-padded along x (saves a copy).
        n_pad: length of the periodic propagation window (>= N).
        n_out: samples kept around the axis (<= n_pad).

    Returns:
        complex (Λ, n_out, n_out), sample i at (i − n_out//2)·pitch.
    """
    n = field.shape[-2]  # pupil samples (the rows; columns may already be padded)
    h1 = fresnel_transfer_function_1d(
        n_pad, pitch_m, wavelengths_m.to(field.real.dtype), distance_m
    )
    h1 = h1[:, None, :]
    idx = _centered_indices(n, n_pad, n_out, field.device)
    # Along x on every row (rows are independent), keep the n_out central columns.
    # (in-place products: the FFT's backward does not need its output)
    u = torch.fft.ifft(torch.fft.fft(field, n=n_pad, dim=-1).mul_(h1), dim=-1).index_select(-1, idx)
    # Along y, on the transposed array so the FFT runs over contiguous memory.
    u = u.transpose(-1, -2)
    u = torch.fft.ifft(torch.fft.fft(u, n=n_pad, dim=-1).mul_(h1), dim=-1).index_select(-1, idx)
    return u.transpose(-1, -2)


def check_fresnel_sampling(
    pitch_m: float, n_pad: int, wavelengths_m: np.ndarray, distance_m: float
) -> str | None:
    """Voelz's criterion for the transfer-function method: Δx ≥ λz/L (L = n_pad·Δx).

    Returns None when satisfied, else a message naming the fix.
    """
    lam_max = float(np.max(wavelengths_m))
    critical_m = lam_max * distance_m / (n_pad * pitch_m)
    if pitch_m >= critical_m * (1 - 1e-9):
        return None
    need_pad = math.ceil(lam_max * distance_m / pitch_m**2)
    need_pitch = math.sqrt(lam_max * distance_m / n_pad)
    return (
        f"Fresnel transfer function undersampled: pupil_pitch_um={pitch_m * 1e6:g} is below "
        f"λz/L = {critical_m * 1e6:.3g} µm (λ={lam_max * 1e9:g} nm, z={distance_m * 1e3:g} mm, "
        f"L = {n_pad} samples). Fix: raise the padded grid to >= {need_pad} samples (pad_factor), "
        f"or pupil_pitch_um to >= {need_pitch * 1e6:.3g}, or shorten sensor_distance_mm"
    )


def max_phase_step(phase: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Largest |Δφ| (rad) between neighbouring samples where both lie in ``mask``.

    Args:
        phase: (Λ, N, N) unwrapped phase. mask: (N, N) bool.

    Returns:
        (Λ,) tensor.
    """
    dx, dy = _neighbour_steps(phase, mask)
    return torch.maximum(dx.flatten(-2).amax(-1), dy.flatten(-2).amax(-1))


def _neighbour_steps(phase: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """|Δφ| along x (Λ, N, N−1) and y (Λ, N−1, N), 0 where a sample lies outside ``mask``."""
    dx = (phase[..., :, 1:] - phase[..., :, :-1]).abs() * (mask[:, 1:] & mask[:, :-1])
    dy = (phase[..., 1:, :] - phase[..., :-1, :]).abs() * (mask[1:, :] & mask[:-1, :])
    return dx, dy


def phase_step_excess(phase: torch.Tensor, mask: torch.Tensor, limit_rad: float) -> torch.Tensor:
    """Σ relu(|Δφ| − limit)² (rad²) over neighbouring samples that both lie in ``mask`` and
    all wavelengths: 0 while every step is under ``limit_rad``, differentiable, so training
    can keep a surface sampled that :func:`max_phase_step` would only report.

    Args:
        phase: (Λ, N, N) unwrapped phase. mask: (N, N) bool. limit_rad: below π (aliasing).

    Returns:
        () tensor.
    """
    dx, dy = _neighbour_steps(phase, mask)  # 0 outside the mask: under any limit > 0
    return torch.relu(dx - limit_rad).square().sum() + torch.relu(dy - limit_rad).square().sum()


# --------------------------------------------------------------------------- resampling


def area_resample_matrix(
    n_in: int, pitch_in: float, n_out: int, pitch_out: float, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Exact area-weight matrix from a fine grid to a coarser one (FFT-centred both).

    Entry (k, i) is the fraction of input cell i that lies in output pixel k, so A @ v
    integrates piecewise-constant intensity over each output pixel (energy is conserved on
    the overlap). Works for any (non-integer) pitch ratio.

    Returns:
        (n_out, n_in) tensor.
    """
    ci = (np.arange(n_in) - n_in // 2) * pitch_in
    co = (np.arange(n_out) - n_out // 2) * pitch_out
    lo = np.maximum(co[:, None] - pitch_out / 2, ci[None, :] - pitch_in / 2)
    hi = np.minimum(co[:, None] + pitch_out / 2, ci[None, :] + pitch_in / 2)
    return torch.from_numpy(np.clip(hi - lo, 0.0, None) / pitch_in).to(dtype)


def area_resample(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply an area-weight matrix (n_out, n_in) to both last axes of (..., n_in, n_in)."""
    return matrix @ image @ matrix.transpose(0, 1)


def psf_intensity_to_sensor(intensity: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Resample an intensity (Λ, M, M) to sensor pixels (Λ, K, K), each wavelength summing to 1."""
    psf = area_resample(intensity, matrix)
    return psf / psf.sum(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(psf.dtype).tiny)


# --------------------------------------------------------------------------- image formation


def linear_convolve(images: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
    """Linear (zero-padded, not circular) convolution of each channel with its PSF.

    Args:
        images: (B, C, H, W).
        psf: (C, K, K) or (1, K, K), centre at index K//2 (as produced by the camera).

    Returns:
        (B, C, H, W): the "same" part of the full convolution; a delta at p returns the PSF
        centred at p and nothing wraps around the borders.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if psf.dim() != 3 or psf.shape[0] not in (1, images.shape[1]):
        raise ValueError(
            f"psf must be (C, K, K) with C = 1 or {images.shape[1]} (image channels), "
            f"got shape {tuple(psf.shape)}"
        )
    h, w = images.shape[-2:]
    kh, kw = psf.shape[-2:]
    size = (
        scipy.fft.next_fast_len(h + kh - 1, real=True),
        scipy.fft.next_fast_len(w + kw - 1, real=True),
    )
    spec = torch.fft.rfft2(images, s=size) * torch.fft.rfft2(psf.to(images.dtype), s=size)
    full = torch.fft.irfft2(spec, s=size)
    return full[..., kh // 2 : kh // 2 + h, kw // 2 : kw // 2 + w]


def srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB transfer curve, linear [0, 1] → encoded [0, 1]."""
    x = linear.clamp(0.0, 1.0)
    return torch.where(
        x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055
    )


def srgb_decode(encoded: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`srgb_encode`."""
    x = encoded.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


_GAMMA_EPS = 1e-3  # offset that keeps the power law's slope finite at 0


def gamma_encode(linear: torch.Tensor, gamma: float) -> torch.Tensor:
    """Power-law response ≈ x^(1/γ), offset so the slope at 0 is finite and 0 → 0, 1 → 1."""
    e0 = _GAMMA_EPS ** (1.0 / gamma)
    scale = (1.0 + _GAMMA_EPS) ** (1.0 / gamma) - e0
    return ((linear.clamp(0.0, 1.0) + _GAMMA_EPS) ** (1.0 / gamma) - e0) / scale


def gamma_decode(encoded: torch.Tensor, gamma: float) -> torch.Tensor:
    """Exact inverse of :func:`gamma_encode`."""
    e0 = _GAMMA_EPS ** (1.0 / gamma)
    scale = (1.0 + _GAMMA_EPS) ** (1.0 / gamma) - e0
    return (encoded.clamp(0.0, 1.0) * scale + e0) ** gamma - _GAMMA_EPS


def sensor_noise(
    signal: torch.Tensor,
    read_noise_std: float,
    shot_noise_gain: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Additive Gaussian read noise, or Poisson–Gaussian noise (Foi et al. 2008):
    y = x + √(a·x + σ²)·ε, ε ~ N(0, 1), a = shot_noise_gain (0 → Gaussian only).

    The noise is reparameterised, so gradients flow to ``signal``.
    """
    if read_noise_std == 0 and shot_noise_gain == 0:
        return signal
    eps = torch.randn(signal.shape, generator=generator, device=signal.device, dtype=signal.dtype)
    var = shot_noise_gain * signal.clamp_min(0.0) + read_noise_std**2
    return signal + var.sqrt() * eps


def quantize_ste(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Clamp to [0, 1] and round to 2^bits − 1 levels; straight-through gradient."""
    levels = 2**bits - 1
    x = x.clamp(0.0, 1.0)
    return x + (torch.round(x * levels) / levels - x).detach()


def _complex_of(real: torch.dtype) -> torch.dtype:
    return torch.complex128 if real == torch.float64 else torch.complex64

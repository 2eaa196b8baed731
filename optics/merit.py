"""Figures of merit of a lens export (pure numpy): PSF correlation, Strehl ratio, encircled
energy, radial MTF, smallest surface feature, multi-level quantisation of a height map.

Conventions as ``optics/fabrication.py`` (which re-exports these): stacks (Λ, M, M) per
wavelength, height maps (N, N) in µm with an aperture mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = [
    "QuantizedHeight",
    "encircled_energy_radius_um",
    "psf_correlation",
    "quantize_height",
    "radial_mtf",
    "smallest_feature_um",
    "strehl_ratio",
]


def psf_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation per wavelength of two PSF stacks (Λ, K, K) → (Λ,)."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    denom = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return (a * b).sum(1) / np.maximum(denom, np.finfo(np.float64).tiny)


def strehl_ratio(intensity: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Peak ratio max(intensity)/max(reference) per wavelength, (Λ, M, M) each. Pass raw
    intensities from the same pupil energy (not normalised to the window) for the Strehl ratio."""
    a = np.asarray(intensity, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    return a.reshape(len(a), -1).max(1) / b.reshape(len(b), -1).max(1)


def encircled_energy_radius_um(
    intensity: np.ndarray,
    pitch_um: float,
    fractions: tuple[float, ...] = (0.5, 0.8),
    total: float | np.ndarray | None = None,
) -> np.ndarray:
    """Radius (µm) of the disk centred on the intensity centroid that holds each fraction of
    ``total`` (default: the energy in the window; pass the pupil energy to count light that
    leaves the window). Pixel-centre distances, linear interpolation from (0, 0).

    Args:
        intensity: (Λ, M, M). total: scalar or (Λ,).

    Returns:
        (Λ, F); NaN where the window holds less than the fraction.
    """
    intensity = np.asarray(intensity, dtype=np.float64)
    m = intensity.shape[-1]
    rows, cols = np.mgrid[0:m, 0:m]
    totals = np.broadcast_to(
        intensity.sum((-2, -1)) if total is None else np.asarray(total, dtype=np.float64),
        (len(intensity),),
    )
    out = np.full((len(intensity), len(fractions)), np.nan)
    for i, p in enumerate(intensity):
        s = p.sum()
        cy, cx = (p * rows).sum() / s, (p * cols).sum() / s
        r = np.hypot(rows - cy, cols - cx).ravel() * pitch_um
        order = np.argsort(r, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(p.ravel()[order]) / totals[i]])
        radii = np.concatenate([[0.0], r[order]])
        for f, frac in enumerate(fractions):
            if cum[-1] >= frac:
                out[i, f] = np.interp(frac, cum, radii)
    return out


def radial_mtf(psf: np.ndarray, pitch_um: float) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged MTF per wavelength up to the sensor Nyquist frequency.

    Returns:
        frequencies (F,) in cycles/mm and MTF (Λ, F), 1 at zero frequency.
    """
    psf = np.asarray(psf, dtype=np.float64)
    k = psf.shape[-1]
    otf = np.abs(np.fft.fft2(np.fft.ifftshift(psf, axes=(-2, -1))))
    otf /= np.maximum(otf[..., :1, :1], np.finfo(np.float64).tiny)
    f = np.fft.fftfreq(k, d=pitch_um * 1e-3)
    fr = np.hypot(f[None, :], f[:, None])
    df = 1.0 / (k * pitch_um * 1e-3)
    bins = np.rint(fr / df).astype(int).ravel()
    n_bins = k // 2 + 1
    keep = bins < n_bins
    counts = np.bincount(bins[keep], minlength=n_bins)
    mtf = np.stack(
        [np.bincount(bins[keep], o.ravel()[keep], minlength=n_bins) for o in otf]
    ) / np.maximum(counts, 1)
    return np.arange(n_bins) * df, mtf


def smallest_feature_um(
    height_um: np.ndarray, mask: np.ndarray, pitch_um: float, min_step_um: float = 1e-3
) -> float | None:
    """Smallest lateral distance (µm) between a local maximum and a local minimum of the surface.

    Extrema are samples whose 3×3 neighbourhood lies inside the aperture and that are >= (<=)
    all 8 neighbours (flat patches excluded). For each maximum the nearest minima (up to 8) are
    searched and the closest one at least ``min_step_um`` lower counts: for a sinusoidal ripple
    this is its half-period — the width of the narrowest hill or valley a process must form.
    None when the surface has no interior maximum–minimum pair (e.g. a plain lens).
    """
    h = np.where(mask, np.asarray(height_um, dtype=np.float64), 0.0)
    interior = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool))
    hmax = ndimage.maximum_filter(h, size=3, mode="nearest")
    hmin = ndimage.minimum_filter(h, size=3, mode="nearest")
    is_max = interior & (h >= hmax) & (h > hmin)
    is_min = interior & (h <= hmin) & (h < hmax)
    if not is_max.any() or not is_min.any():
        return None
    p_max, p_min = np.argwhere(is_max), np.argwhere(is_min)
    k = min(8, len(p_min))
    dist, idx = cKDTree(p_min).query(p_max, k=k)
    dist, idx = dist.reshape(len(p_max), k), idx.reshape(len(p_max), k)
    steps = h[tuple(p_max.T)][:, None] - h[p_min[idx, 0], p_min[idx, 1]]
    ok = steps >= min_step_um
    if not ok.any():
        return None
    return float(dist[ok].min() * pitch_um)


@dataclass(frozen=True)
class QuantizedHeight:
    """Multi-level surface: ``level`` (N, N) int in [0, L); ``height_um`` (N, N) quantised height
    (same offset as the input, 0 outside the aperture); ``level_heights_um`` (L,) height of each
    level above the lowest one; ``step_um`` level spacing; ``offset_um`` height of level 0."""

    level: np.ndarray
    height_um: np.ndarray
    level_heights_um: np.ndarray
    step_um: float
    offset_um: float


def quantize_height(
    height_um: np.ndarray, mask: np.ndarray, levels: int, wrap_period_um: float | None = None
) -> QuantizedHeight:
    """Quantise a height map (N, N) µm to ``levels`` equally spaced levels.

    Without wrapping the levels span the full peak-to-valley (level 0 = lowest point, level L−1 =
    highest, step PV/(L−1)). With ``wrap_period_um`` T (e.g. λ_d/(n(λ_d) − 1), one wave of phase
    at the design wavelength) the height is first reduced modulo T (a kinoform / multi-level
    diffractive surface) and quantised to L levels of T/L.
    """
    if int(levels) != levels or levels < 2:
        raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
    h = np.asarray(height_um, dtype=np.float64)
    lo = float(h[mask].min())
    if wrap_period_um is None:
        pv = float(h[mask].max()) - lo
        step = pv / (levels - 1) if pv > 0 else 1.0
        level = np.rint((h - lo) / step).astype(np.int64).clip(0, levels - 1)
    else:
        if not wrap_period_um > 0:
            raise ValueError(f"wrap_period_um must be positive, got {wrap_period_um}")
        step = wrap_period_um / levels
        level = np.rint(np.remainder(h - lo, wrap_period_um) / step).astype(np.int64) % levels
    level = np.where(mask, level, 0)
    heights = np.arange(levels) * step
    quantised = np.where(mask, lo + heights[level], 0.0)
    return QuantizedHeight(level, quantised, heights, float(step), lo)

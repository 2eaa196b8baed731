"""The numbers of the export report: surface statistics, PSF figures of merit, quantisation
and Monte-Carlo effects, process-limit warnings. Pure functions over the lens and its analytic
surface (maths in ``optics/fabrication.py``); no files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import fabrication as fab
from .. import functional as fn
from ..lens import ZernikeLens

__all__ = [
    "ProcessLimits",
    "SurfaceStats",
    "limit_warnings",
    "monte_carlo_summary",
    "psf_metrics",
    "quantisation_effect",
    "surface_stats",
]

log = logging.getLogger("optics.export")


@dataclass(frozen=True)
class ProcessLimits:
    """Process limits the report checks the design against (None = do not check).

    Defaults are placeholders for a generic grayscale-lithography / diamond-turning process;
    take the real numbers from the fab's process sheet.
    """

    max_sag_um: float | None = 100.0  # deepest structure (peak-to-valley height)
    max_slope_deg: float | None = 20.0  # steepest surface slope
    min_feature_um: float | None = 10.0  # narrowest hill / valley (see smallest_feature_um)


@dataclass(frozen=True)
class SurfaceStats:
    """Analytic surface on the pupil grid (N, N arrays) and its statistics (µm, degrees)."""

    mask: np.ndarray
    height_um: np.ndarray  # base lens included; 0 outside the aperture
    rel_um: np.ndarray  # height above the lowest point; NaN outside
    freeform_um: np.ndarray  # Zernike part minus piston / tip / tilt
    lowest_um: float
    pv_um: float
    rms_um: float
    max_slope_deg: float
    feature_um: float | None
    freeform_pv_um: float
    freeform_rms_um: float
    freeform_feature_um: float | None


def surface_stats(
    model: fab.SurfaceModel, samples: np.ndarray, n: int, pitch_um: float
) -> SurfaceStats:
    """Statistics of the surface from its Grid Sag samples (5, n+1, n+1) (see
    ``zemax.grid_sag_samples``; the first n rows / columns are the pupil grid)."""
    mask = fab.aperture_mask(n)
    x_mm, y_mm = fab.pupil_coordinates_mm(n, pitch_um)
    height_um = samples[0, :n, :n] * 1e3
    zx, zy = samples[1, :n, :n][mask], samples[2, :n, :n][mask]
    c = model.coefficients_um
    r_mm = model.normalisation_radius_mm
    free = height_um.copy()
    free[mask] -= model.base_sag_per_mm * (x_mm[mask] ** 2 + y_mm[mask] ** 2) * 1e3
    tilt = c[0] + (2 * c[1] * x_mm[mask] / r_mm if len(c) > 1 else 0.0)
    tilt = tilt + (2 * c[2] * y_mm[mask] / r_mm if len(c) > 2 else 0.0)
    free[mask] -= tilt
    lo, hi = float(height_um[mask].min()), float(height_um[mask].max())
    pv_um = hi - lo
    free_pv = float(free[mask].max() - free[mask].min())
    return SurfaceStats(
        mask=mask,
        height_um=height_um,
        rel_um=np.where(mask, height_um - lo, np.nan),
        freeform_um=np.where(mask, free, np.nan),
        lowest_um=lo,
        pv_um=pv_um,
        rms_um=float(height_um[mask].std()),
        max_slope_deg=float(np.degrees(np.arctan(np.hypot(zx, zy).max()))),
        feature_um=fab.smallest_feature_um(height_um, mask, pitch_um, max(1e-3, 1e-3 * pv_um)),
        freeform_pv_um=free_pv,
        freeform_rms_um=float(free[mask].std()),
        freeform_feature_um=fab.smallest_feature_um(
            free, mask, pitch_um, max(1e-3, 1e-3 * free_pv)
        ),
    )


def psf_metrics(lens: ZernikeLens, height_um: np.ndarray) -> dict[str, Any]:
    """PSFs (Λ, K, K) of the lens, of its analytic surface and of the aberration-free lens, and
    the figures of merit. Strehl and encircled energy use the intensity at the pupil pitch
    (finer than the sensor pixels) without normalisation: both lenses pass the same pupil
    energy."""
    with torch.no_grad():
        psf = lens().double().cpu().numpy()
        nominal_int = lens.field_intensity().double().cpu().numpy()
    ideal_int = fab.ideal_intensity(lens).double().numpy()
    ideal = fab.intensity_to_psf(lens, torch.from_numpy(ideal_int)).numpy()
    analytic_int = fab.intensity_from_height(lens, height_um).double().numpy()
    analytic_psf = fab.intensity_to_psf(lens, torch.from_numpy(analytic_int)).numpy()
    pupil_energy = float(lens.num_aperture)  # Σ|field|² of the unit-amplitude aperture
    resample = lens.resample_matrix.double().cpu()

    def pixel_peak(intensity: np.ndarray) -> np.ndarray:
        return fn.area_resample(torch.from_numpy(intensity), resample).numpy()

    pitch_um = lens.pupil_pitch_um
    return {
        "psf": psf,
        "ideal_int": ideal_int,
        "analytic_psf": analytic_psf,
        "strehl": fab.strehl_ratio(nominal_int, ideal_int),
        "pixel_strehl": fab.strehl_ratio(pixel_peak(nominal_int), pixel_peak(ideal_int)),
        "ee": fab.encircled_energy_radius_um(nominal_int, pitch_um, (0.5, 0.8), pupil_energy),
        "ee_ideal": fab.encircled_energy_radius_um(ideal_int, pitch_um, (0.5, 0.8), pupil_energy),
        "mtf": fab.radial_mtf(psf, lens.sensor_pitch_um),
        "mtf_ideal": fab.radial_mtf(ideal, lens.sensor_pitch_um)[1],
        "analytic_corr": fab.psf_correlation(analytic_psf, psf),
        "analytic_strehl": fab.strehl_ratio(analytic_int, ideal_int),
    }


def quantisation_effect(
    lens: ZernikeLens,
    surface: SurfaceStats,
    q: fab.QuantizedHeight,
    psfs: dict[str, Any],
    wrapped: bool,
) -> dict[str, Any]:
    """PSF change of the quantised surface ``q`` against the unquantised analytic surface."""
    q_int = fab.intensity_from_height(lens, q.height_um).double()
    qpsf = fab.intensity_to_psf(lens, q_int).numpy()
    q_strehl = fab.strehl_ratio(q_int.numpy(), psfs["ideal_int"])
    error = (q.height_um - surface.height_um)[surface.mask]
    return {
        "step_um": q.step_um,
        "rms_error_um": None if wrapped else float(np.sqrt(np.mean(error**2))),
        "psf_correlation": fab.psf_correlation(qpsf, psfs["analytic_psf"]).tolist(),
        "strehl": q_strehl.tolist(),
        "strehl_change": (q_strehl - psfs["analytic_strehl"]).tolist(),
    }


def monte_carlo_summary(
    lens: ZernikeLens,
    surface: SurfaceStats,
    psfs: dict[str, Any],
    draws: int,
    tol_um: float,
    seed: int,
) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """Fabrication-error draws (uniform ±``tol_um``): (raw draws or None, report numbers)."""
    summary: dict[str, Any] = {"draws": draws, "tolerance_um": tol_um}
    if draws > 0 and tol_um > 0:
        mc = fab.monte_carlo_psfs(
            lens, surface.height_um, psfs["analytic_psf"], psfs["ideal_int"], draws, tol_um, seed
        )
        summary.update(
            strehl_mean=mc["strehl"].mean(0).tolist(),
            strehl_std=mc["strehl"].std(0).tolist(),
            correlation_mean=mc["correlation"].mean(0).tolist(),
            correlation_std=mc["correlation"].std(0).tolist(),
            correlation_min=mc["correlation"].min(0).tolist(),
        )
        return mc, summary
    if draws > 0:
        summary["note"] = "tolerance is 0: no draws"
    return None, summary


def limit_warnings(limits: ProcessLimits, surface: SurfaceStats, notes: list[str]) -> list[str]:
    """Process-limit violations (plus ``notes``), each also logged as a warning."""
    warnings: list[str] = []
    if limits.max_sag_um is not None and surface.pv_um > limits.max_sag_um:
        warnings.append(
            f"sag depth (peak-to-valley) {surface.pv_um:.3f} µm exceeds the process limit "
            f"{limits.max_sag_um:g} µm (--max-sag-um)"
        )
    if limits.max_slope_deg is not None and surface.max_slope_deg > limits.max_slope_deg:
        warnings.append(
            f"maximum slope {surface.max_slope_deg:.2f}° exceeds the process limit "
            f"{limits.max_slope_deg:g}° (--max-slope-deg)"
        )
    feature_um = surface.feature_um
    if limits.min_feature_um is not None and feature_um is not None:
        if feature_um < limits.min_feature_um:
            warnings.append(
                f"smallest feature {feature_um:.2f} µm is below the process limit "
                f"{limits.min_feature_um:g} µm (--min-feature-um)"
            )
    warnings += [n for n in notes if n]
    for msg in warnings:
        log.warning(msg)
    return warnings

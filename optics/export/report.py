"""``report.md``: the self-contained export report, rendered from the summary numbers."""

from __future__ import annotations

import math
from typing import Any

from .. import fabrication as fab
from ..lens import ZernikeLens

__all__ = ["render_report"]


def _fmt(x: float | None, spec: str = ".4g", unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return format(x, spec) + unit


def render_report(
    s: dict[str, Any], lens: ZernikeLens, model: fab.SurfaceModel, quick: bool
) -> str:
    """Markdown of the export summary ``s`` (see :func:`optics.export.export_lens`)."""
    return "\n".join(
        [
            *_surface_section(s, lens),
            *_optics_section(s, lens),
            *_levels_section(s, lens),
            *_monte_carlo_section(s, lens, quick),
            *_files_section(s, lens, model),
        ]
    )


def _surface_section(s: dict[str, Any], lens: ZernikeLens) -> list[str]:
    out = [
        "# Lens export report",
        "",
        f"Source: `{s['source'] or 'in-memory camera'}`. Material {lens.material.name}, "
        f"aperture {s['aperture_diameter_mm']:.4g} mm ({lens.pupil_grid}² samples at "
        f"{lens.pupil_pitch_um:g} µm), lens–sensor {lens.sensor_distance_mm:g} mm, object "
        f"{'at infinity' if lens.object_distance_mm is None else f'{lens.object_distance_mm:g} mm'}"
        f", sensor pitch {lens.sensor_pitch_um:g} µm, {lens.num_zernike} Noll terms, base lens "
        f"{f'f = {lens.focal_length_mm:.4g} mm' if lens.base_lens else 'none'}.",
        "",
        "## Warnings",
        "",
    ]
    out += [f"- ⚠ {w}" for w in s["warnings"]] or ["- none (all checked process limits met)"]
    lim = s["limits"]
    out += [
        "",
        f"Process limits checked: max sag {_fmt(lim['max_sag_um'], 'g')} µm, max slope "
        f"{_fmt(lim['max_slope_deg'], 'g')}°, min feature {_fmt(lim['min_feature_um'], 'g')} µm "
        "(CLI: --max-sag-um, --max-slope-deg, --min-feature-um).",
        "",
        "## Surface",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| peak-to-valley height (sag depth) | {s['peak_to_valley_um']:.4f} µm |",
        f"| RMS height (about the mean) | {s['rms_height_um']:.4f} µm |",
        f"| freeform part (Zernike − piston/tip/tilt): PV / RMS | "
        f"{s['freeform_peak_to_valley_um']:.4f} / {s['freeform_rms_um']:.4f} µm |",
        f"| maximum slope | {s['max_slope_deg']:.3f}° |",
        f"| smallest feature (full surface) | {_fmt(s['smallest_feature_um'], '.2f', ' µm')} |",
        "| smallest feature (freeform part) | "
        f"{_fmt(s['smallest_freeform_feature_um'], '.2f', ' µm')} |",
        f"| largest phase step between pupil samples | {s['phase_step_rad']:.3f} rad "
        "(aliasing above π) |",
        "",
        "*Smallest feature*: the smallest lateral distance between a local maximum and the nearest"
        " local minimum of the height (3×3-neighbourhood extrema inside the aperture, height "
        "difference ≥ max(1 nm, 0.1 % PV)) — the half-period of the finest ripple, i.e. the "
        "narrowest hill or valley the process must form; n/a when the surface has no such pair. "
        "*Maximum slope*: max |∇h| from the analytic derivatives.",
        "",
    ]
    return out


def _optics_section(s: dict[str, Any], lens: ZernikeLens) -> list[str]:
    lam = [f"{w:g}" for w in lens.wavelengths_nm]
    out = [
        "## Optical performance (nominal lens)",
        "",
        "Reference: the aberration-free lens of the same aperture, focused on the sensor at "
        "every wavelength. *Strehl* = peak intensity / reference peak, both sampled at the pupil "
        f"pitch ({lens.pupil_pitch_um:g} µm) on the sensor plane from the same pupil energy; "
        f"*pixel Strehl* = the same for the peak sensor pixel ({lens.sensor_pitch_um:g} µm, area "
        "integrated). *EE50 / EE80*: radius of the disk around the PSF centroid holding 50 % / "
        "80 % of the light leaving the lens (pupil-pitch sampling; n/a = not within the PSF "
        "window).",
        "",
        "| λ (nm) | Strehl | pixel Strehl | EE50 (µm) | EE80 (µm) | EE50 / EE80 aberration-free "
        "(µm) |",
        "|---|---|---|---|---|---|",
    ]
    for w in lam:
        out.append(
            f"| {w} | {s['strehl'][w]:.4f} | {s['pixel_strehl'][w]:.4f} | "
            f"{_fmt(s['ee50_um'][w], '.2f')} | {_fmt(s['ee80_um'][w], '.2f')} | "
            f"{_fmt(s['ee50_ideal_um'][w], '.2f')} / {_fmt(s['ee80_ideal_um'][w], '.2f')} |"
        )
    return out


def _levels_section(s: dict[str, Any], lens: ZernikeLens) -> list[str]:
    wrap = s["wrap_levels_um"]
    out = [
        "",
        "## Multi-level (grayscale / multi-step lithography) maps",
        "",
        (
            f"Height wrapped modulo one wave at {lens.design_wavelength_nm:g} nm "
            f"({wrap:.4f} µm) before quantising (multi-level diffractive surface)."
            if wrap
            else "Full height quantised to L equally spaced levels from the lowest (level 0) "
            "to the highest point. A deep refractive surface needs many levels this way; "
            "`--wrap-levels` quantises modulo one design wave instead (multi-level diffractive "
            "surface, with diffractive chromatic behaviour)."
        ),
        "`levels_L.png` stores grey = level·(2^bits−1)/(L−1) (outside the aperture 0), "
        "`levels_L.csv` maps level → grey value → height. PSF change vs the unquantised surface "
        "(same propagation):",
        "",
        "| levels | step (µm) | PSF correlation per λ | Strehl per λ | Strehl change per λ |",
        "|---|---|---|---|---|",
    ]
    for count, q in s["levels"].items():
        out.append(
            f"| {count} | {q['step_um']:.4g} | "
            + ", ".join(f"{v:.5f}" for v in q["psf_correlation"])
            + " | "
            + ", ".join(f"{v:.4f}" for v in q["strehl"])
            + " | "
            + ", ".join(f"{v:+.4f}" for v in q["strehl_change"])
            + " |"
        )
    return out


def _monte_carlo_section(s: dict[str, Any], lens: ZernikeLens, quick: bool) -> list[str]:
    lam = [f"{w:g}" for w in lens.wavelengths_nm]
    mc = s["monte_carlo"]
    out = ["", "## Fabrication tolerance (Monte Carlo)", ""]
    if "strehl_mean" in mc:
        out += [
            f"{mc['draws']} draws of independent uniform height errors in ±{mc['tolerance_um']:g}"
            " µm on every pupil sample (the training noise model).",
            "",
            "| λ (nm) | Strehl mean ± std | PSF correlation to nominal: mean ± std (min) |",
            "|---|---|---|",
        ]
        for i, w in enumerate(lam):
            out.append(
                f"| {w} | {mc['strehl_mean'][i]:.5f} ± {mc['strehl_std'][i]:.2g} | "
                f"{mc['correlation_mean'][i]:.7f} ± {mc['correlation_std'][i]:.2g} "
                f"({mc['correlation_min'][i]:.7f}) |"
            )
    else:
        out.append(f"Not run ({mc.get('note', 'monte_carlo = 0')}).")
    figs = [] if quick else ["psf.png", "height.png", "mtf.png"]
    if not quick and "strehl_mean" in mc:
        figs.append("fabrication_error.png")
    out += ["", "## Figures", ""]
    out += [f"![{f}]({f})" for f in figs] or ["Skipped (quick mode)."]
    return out


def _files_section(s: dict[str, Any], lens: ZernikeLens, model: fab.SurfaceModel) -> list[str]:
    return [
        "",
        "## Files and conventions",
        "",
        "- `lens.json`: schema `privcam.lens` v1; coefficients µm of surface height, **Noll "
        "order, RMS (Noll) normalisation** on the aperture disk (radius "
        f"{model.normalisation_radius_mm:.6g} mm); `optics.export.load_lens_json` rebuilds the "
        "camera exactly.",
        "- `height_um.npy/.csv/.tif`: height above the lowest point of the aperture (µm), row 0 ="
        " +y, column 0 = −x, NaN outside (0 in the TIFF); the TIFF is 16-bit with "
        f"{s['tiff_um_per_level']:.6g} µm per level (also in lens.json "
        "`height_map.tiff_um_per_level` and the TIFF description).",
        f"- `surface.dat`: OpticStudio Grid Sag, lens units mm (unitflag 0), "
        f"{lens.pupil_grid + 1}² points at {lens.pupil_pitch_um * 1e-3:g} mm centred on the "
        "vertex (the pupil samples plus one no-data column at +x and row at −y), first line = "
        "upper-left corner (−x, +y), left to right, rows downwards; `nodata` = 1 (z = 0) outside"
        " the aperture. z = glass height (base lens included) in mm; dz/dx, dz/dy (mm/mm) and "
        "d²z/dxdy (1/mm) are **analytic** (exact derivatives of the Zernike sum and the "
        "paraboloid base, not finite differences). Sign: z is the sag of the structured face as "
        "the exit face of a plano element (more glass = larger z); negate for the entrance face.",
        "- `zernike_standard_sag.txt`: OpticStudio Zernike Standard Sag (Noll order and "
        "normalisation = privcam's: no conversion but µm → mm), base lens as radius + conic −1.",
        "- `levels_L.png/.csv`, `psf_<λ>nm.npy` (PSF at the sensor pitch, sums to 1, centre at "
        "K//2), `psf.npz` (all wavelengths with their pitch: `--model.camera.preset measured "
        "--model.camera.psf_file psf.npz` reads it), figures, `summary.json`.",
        "",
        f"Export time: {s['seconds']:.1f} s.",
        "",
    ]

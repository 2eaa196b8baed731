"""``export_lens``: analyse a camera's lens and write its fabrication package into one folder,
atomically (built in a temporary folder next to the target, then renamed)."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import fabrication as fab
from ..camera import Camera
from ..lens import ZernikeLens
from . import zemax
from .analysis import (
    ProcessLimits,
    SurfaceStats,
    limit_warnings,
    monte_carlo_summary,
    psf_metrics,
    quantisation_effect,
    surface_stats,
)
from .figures import write_figures
from .files import write_height_maps, write_level_map, write_psfs
from .lens_file import SCHEMA, lens_of, lens_to_dict
from .report import render_report

__all__ = ["DEFAULT_LEVELS", "MARKER", "export_lens"]

log = logging.getLogger("optics.export")  # also when run as __main__

DEFAULT_LEVELS = (4, 8, 16, 256)
MARKER = ".privcam-export"


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values).ravel()]


def export_lens(
    camera: Camera,
    out_dir: str | Path,
    *,
    levels: Sequence[int] = DEFAULT_LEVELS,
    wrap_levels: bool = False,
    monte_carlo: int = 16,
    tolerance_um: float | None = None,
    limits: ProcessLimits | None = None,
    overwrite: bool = False,
    quick: bool = False,
    seed: int = 0,
    source: str | None = None,
) -> dict[str, Any]:
    """Write the fabrication package of ``camera``'s lens into ``out_dir``; return the summary.

    Args:
        levels: level counts of the multi-level maps (each >= 2; 8-bit PNG up to 256 levels,
            16-bit above).
        wrap_levels: quantise the height modulo one wave at the design wavelength
            (λ_d/(n_d − 1): a multi-level diffractive surface) instead of over the full depth.
        monte_carlo: number of fabrication-error draws (0 = none).
        tolerance_um: half-width of the uniform height error; default the lens's
            ``fabrication_tolerance_um``.
        limits: process limits to check (default :class:`ProcessLimits`()).
        overwrite: replace an existing ``out_dir`` (else FileExistsError).
        quick: skip the figures.
        source: where the camera came from, for the report.

    Returns:
        a JSON-serialisable dict of the report's numbers (also written as summary.json).
    """
    t0 = time.perf_counter()
    lens = lens_of(camera, source or "camera")
    out = Path(out_dir)
    levels, tol = _check_request(lens, out, levels, monte_carlo, tolerance_um, overwrite, source)
    limits = ProcessLimits() if limits is None else limits
    if lens.fixed_coefficients_um.device.type != "cpu":  # export runs on the CPU
        camera = copy.deepcopy(camera).cpu()
        lens = lens_of(camera)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    was_training = camera.training
    camera.eval()
    try:
        summary = _export_into(
            camera,
            lens,
            tmp,
            levels=levels,
            wrap_levels=wrap_levels,
            draws=monte_carlo,
            tol=tol,
            limits=limits,
            quick=quick,
            seed=seed,
            source=source,
            t0=t0,
        )
        summary["out_dir"] = str(out)
        (tmp / "summary.json").write_text(
            json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        (tmp / MARKER).write_text(
            json.dumps({"schema": "privcam.export", "files": summary.get("files", [])}),
            encoding="utf-8",
        )
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        camera.train(was_training)
    log.info("exported lens to %s in %.1f s", out, summary["seconds"])
    return summary


def _check_request(
    lens: ZernikeLens,
    out: Path,
    levels: Sequence[int],
    monte_carlo: int,
    tolerance_um: float | None,
    overwrite: bool,
    source: str | None,
) -> tuple[list[int], float]:
    """Refuse bad options and an ``out`` the export may not replace, before any work; returns
    (level counts, tolerance µm)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a folder; choose another --out")
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"output folder {out} already exists; pass --overwrite (overwrite=True) to replace "
            "it, or choose another --out"
        )
    if out.exists():
        _check_replaceable(out)
    _check_finite(lens, source or "camera")
    levels = [int(v) for v in levels]
    bad = [v for v in levels if v < 2 or v > 65536]
    if bad:
        raise ValueError(f"--levels {bad}: each level count must be in 2..65536")
    if monte_carlo < 0:
        raise ValueError(f"--monte-carlo must be >= 0, got {monte_carlo}")
    tol = lens.fabrication_tolerance_um if tolerance_um is None else float(tolerance_um)
    if not tol >= 0:  # also NaN
        raise ValueError(f"--tolerance-um must be a finite number >= 0, got {tol}")
    return levels, tol


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``, replacing an earlier export there (put back
    if the move fails)."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(old, out)  # put the previous export back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _check_replaceable(out: Path) -> None:
    """``--overwrite`` replaces only a folder that an export wrote, holding nothing else."""
    listed: list[str] | None = None
    try:
        if (out / MARKER).is_file():
            listed = list(json.loads((out / MARKER).read_text(encoding="utf-8"))["files"])
        elif (out / "summary.json").is_file() and (out / "lens.json").is_file():  # older exports
            lens_doc = json.loads((out / "lens.json").read_text(encoding="utf-8"))
            if lens_doc.get("schema") == SCHEMA:
                listed = list(
                    json.loads((out / "summary.json").read_text(encoding="utf-8"))["files"]
                )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        listed = None
    if listed is None:
        raise FileExistsError(
            f"--out {out} exists and was not written by optics.export (no {MARKER} marker); "
            "--overwrite only replaces earlier exports. Choose another --out or move the folder "
            "away yourself"
        )
    extra = sorted(p.name for p in out.iterdir() if p.name not in {*listed, MARKER})
    if extra:
        raise FileExistsError(
            f"--out {out} is an earlier export but also holds files it did not write "
            f"({', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}); --overwrite would "
            "lose them. Move them out or choose another --out"
        )


def _check_finite(lens: ZernikeLens, source: str) -> None:
    """Refuse a lens with NaN/inf coefficients (e.g. from a run whose loss diverged)."""
    coeffs = lens.coefficients_um().detach().double().cpu().numpy()
    bad = [j + 1 for j in np.flatnonzero(~np.isfinite(coeffs))]
    if bad:
        shown = ", ".join(f"Z{j}={coeffs[j - 1]}" for j in bad[:5])
        raise ValueError(
            f"{source}: the lens is not finite ({len(bad)} Zernike coefficient(s): {shown}"
            f"{' ...' if len(bad) > 5 else ''}); the training run that wrote it diverged. "
            "Export an earlier checkpoint"
        )
    for name, tensor in lens.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"{source}: lens tensor {name} holds NaN/inf; the training run "
                "that wrote it diverged. Export an earlier checkpoint"
            )


def _export_into(
    camera: Camera,
    lens: ZernikeLens,
    out: Path,
    *,
    levels: list[int],
    wrap_levels: bool,
    draws: int,
    tol: float,
    limits: ProcessLimits,
    quick: bool,
    seed: int,
    source: str | None,
    t0: float,
) -> dict[str, Any]:
    """Analyse the lens and write every file into ``out``; returns the summary."""
    n, pitch_um = lens.pupil_grid, lens.pupil_pitch_um
    model = fab.SurfaceModel.from_lens(lens)
    samples = zemax.grid_sag_samples(model, n, pitch_um)  # contains the pupil grid
    surface = surface_stats(model, samples, n, pitch_um)

    files, scale = write_height_maps(out, surface.rel_um, surface.mask, surface.pv_um, pitch_um)
    zemax.write_grid_sag(out / "surface.dat", samples, pitch_um)
    zss_note = zemax.write_zernike_standard_sag(out / "zernike_standard_sag.txt", model, lens)
    files += ["surface.dat", "zernike_standard_sag.txt"]
    psfs = psf_metrics(lens, surface.height_um)
    files += write_psfs(out, psfs["psf"], lens.wavelengths_nm, lens.sensor_pitch_um)

    n_design = float(lens.material.refractive_index(lens.design_wavelength_nm))
    wrap_um = lens.design_wavelength_nm * 1e-3 / (n_design - 1) if wrap_levels else None
    quant: dict[str, Any] = {}
    for count in levels:
        q = fab.quantize_height(surface.height_um, surface.mask, count, wrap_um)
        names, bits = write_level_map(out, q, count)
        files += names
        quant[str(count)] = {
            "bits": bits,
            **quantisation_effect(lens, surface, q, psfs, wrap_um is not None),
        }
    mc, mc_summary = monte_carlo_summary(lens, surface, psfs, draws, tol, seed)
    warnings = limit_warnings(limits, surface, [zss_note])

    doc = lens_to_dict(camera)
    doc["height_map"] = _height_map_block(surface, n, pitch_um, scale)
    (out / "lens.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    files.insert(0, "lens.json")
    if not quick:
        files += write_figures(out, lens, psfs, surface.rel_um, surface.freeform_um, mc)

    summary = _summary(lens, model, surface, psfs, source, scale)
    summary.update(
        levels=quant,
        wrap_levels_um=wrap_um,
        monte_carlo=mc_summary,
        limits=asdict(limits),
        warnings=warnings,
        files=[*files, "report.md", "summary.json"],
    )
    summary["seconds"] = time.perf_counter() - t0
    (out / "report.md").write_text(render_report(summary, lens, model, quick), encoding="utf-8")
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _height_map_block(
    surface: SurfaceStats, n: int, pitch_um: float, scale: float
) -> dict[str, Any]:
    """lens.json's description of the height-map files."""
    return {
        "files": ["height_um.npy", "height_um.csv", "height_um.tif"],
        "grid": [n, n],
        "pixel_pitch_um": pitch_um,
        "orientation": "row 0 = +y (top), column 0 = -x; sample (row, col) at x = (col - N/2)·p,"
        " y = (N/2 - row)·p",
        "quantity": "height above the lowest point in the aperture (µm); NaN outside (npy/csv)",
        "offset_um": surface.lowest_um,
        "offset_note": "model height = file height + offset_um",
        "tiff_um_per_level": scale,
        "tiff_outside_aperture": 0,
        "peak_to_valley_um": surface.pv_um,
    }


def _summary(
    lens: ZernikeLens,
    model: fab.SurfaceModel,
    surface: SurfaceStats,
    psfs: dict[str, Any],
    source: str | None,
    scale: float,
) -> dict[str, Any]:
    """The surface and PSF numbers of the summary (keys in report order)."""
    lam_keys = [f"{w:g}" for w in lens.wavelengths_nm]
    ee, ee_ideal = psfs["ee"], psfs["ee_ideal"]

    def per_lambda(values: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(lam_keys, values, strict=True))

    return {
        "source": source,
        "pupil_grid": lens.pupil_grid,
        "num_zernike": lens.num_zernike,
        "aperture_diameter_mm": 2 * model.normalisation_radius_mm,
        "peak_to_valley_um": surface.pv_um,
        "rms_height_um": surface.rms_um,
        "tiff_um_per_level": scale,
        "freeform_peak_to_valley_um": surface.freeform_pv_um,
        "freeform_rms_um": surface.freeform_rms_um,
        "max_slope_deg": surface.max_slope_deg,
        "smallest_feature_um": surface.feature_um,
        "smallest_freeform_feature_um": surface.freeform_feature_um,
        "phase_step_rad": float(lens.check_phase_sampling()),
        "strehl": per_lambda(psfs["strehl"].tolist()),
        "pixel_strehl": per_lambda(psfs["pixel_strehl"].tolist()),
        "ee50_um": per_lambda(_finite_or_none(ee[:, 0])),
        "ee80_um": per_lambda(_finite_or_none(ee[:, 1])),
        "ee50_ideal_um": per_lambda(_finite_or_none(ee_ideal[:, 0])),
        "ee80_ideal_um": per_lambda(_finite_or_none(ee_ideal[:, 1])),
        "analytic_vs_lens_psf_correlation": psfs["analytic_corr"].tolist(),
    }

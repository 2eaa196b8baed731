"""Export a learned lens for fabrication and optical-design tools.

``python -m optics.export --ckpt runs/…/best.ckpt --out export/lens1`` (or ``--coefficients
lens.json``) writes one folder (atomically: built in a temporary folder next to the target, then
renamed) holding

* ``lens.json`` — schema-versioned coefficients (Noll, RMS-normalised, µm of height) with the
  normalisation radius, material, n(λ), geometry and the full CameraConfig;
  :func:`load_lens_json` rebuilds the exact camera from it;
* ``height_um.npy`` / ``height_um.csv`` / ``height_um.tif`` — the surface height (µm above its
  lowest point in the aperture; NaN, or 0 in the TIFF, outside), the TIFF 16-bit with the
  µm-per-level scale in its description and in lens.json;
* ``surface.dat`` — Zemax OpticStudio Grid Sag file (mm, analytic derivatives);
* ``zernike_standard_sag.txt`` — OpticStudio Zernike Standard Sag coefficients (mm);
* ``levels_<L>.png`` + ``levels_<L>.csv`` — multi-level maps for grayscale / multi-step
  lithography with their level → height tables, and the PSF change each quantisation causes;
* ``psf_<λ>nm.npy`` — PSFs at the sensor pitch; figures (PSF, height, MTF, fabrication error);
* ``report.md`` (self-contained) and ``summary.json`` (the numbers :func:`export_lens` returns).

See ``optics/fabrication.py`` for the maths and the definitions of the figures of merit.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import fabrication as fab
from . import functional as fn
from .camera import Camera, CameraConfig, load_camera
from .cli_errors import ArgumentParser, finite_float, run_cli
from .lens import ZernikeLens

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "ProcessLimits",
    "export_lens",
    "lens_to_dict",
    "load_lens_json",
    "main",
    "read_grid_sag",
]

log = logging.getLogger("optics.export")  # also when run as __main__

SCHEMA = "privcam.lens"
SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
ORDERING = "noll"
NORMALISATION = "rms"  # mean of Z_j·Z_k over the unit disk = δ_jk (Noll 1976)
ZEMAX_MAX_STANDARD_TERMS = 231  # OpticStudio Zernike Standard Sag: terms up to radial order 20
TIFF_LEVELS = 65535
DEFAULT_LEVELS = (4, 8, 16, 256)


@dataclass(frozen=True)
class ProcessLimits:
    """Process limits the report checks the design against (None = do not check).

    Defaults are placeholders for a generic grayscale-lithography / diamond-turning process;
    take the real numbers from the fab's process sheet.
    """

    max_sag_um: float | None = 100.0  # deepest structure (peak-to-valley height)
    max_slope_deg: float | None = 20.0  # steepest surface slope
    min_feature_um: float | None = 10.0  # narrowest hill / valley (see smallest_feature_um)


# --------------------------------------------------------------------------- lens.json


def _lens_of(camera: Camera, what: str = "camera") -> ZernikeLens:
    if not isinstance(camera, Camera):
        raise TypeError(f"expected an optics.Camera, got {type(camera).__name__}")
    if camera.lens is None:
        raise ValueError(
            f"{what} is a '{camera.config.preset}' camera without a lens: nothing to export. "
            "Export a 'privacy' or 'defocus' camera (a checkpoint trained with a lens)"
        )
    return camera.lens


def lens_to_dict(camera: Camera) -> dict[str, Any]:
    """The lens.json content (without the height-map block) for a camera with a lens."""
    lens = _lens_of(camera)
    coeffs = lens.coefficients_um().detach().double().cpu().numpy()
    extra = coeffs[lens.num_zernike :]
    if np.any(extra != 0):  # padding partners are never set; guard anyway
        raise ValueError(f"lens has non-zero coefficients beyond num_zernike: {extra.tolist()}")
    coefficients = {str(j): float(coeffs[j - 1]) for j in range(1, lens.num_zernike + 1)}
    config = camera.config.to_dict()
    config.update(
        initial_coefficients_um={int(k): v for k, v in coefficients.items()},
        trainable_indices=list(lens.trainable_indices),
        initial_defocus_um=0.0,  # already in the coefficients
        init_std_um=0.0,
    )
    model = fab.SurfaceModel.from_lens(lens)
    n_design = float(lens.material.refractive_index(lens.design_wavelength_nm))
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "description": (
            "privcam learned lens. Surface height h(x, y) [µm of glass] = base(r) + "
            "Σ_j c_j Z_j(ρ, θ); ρ = r / normalisation_radius_mm, θ from +x towards +y; "
            "+y = up = row 0 of the height maps."
        ),
        "zernike": {
            "ordering": ORDERING,
            "normalisation": NORMALISATION,
            "normalisation_note": "Noll 1976: mean of Z_j² over the unit disk is 1 (RMS 1); "
            "Z2 = 2ρcosθ, Z3 = 2ρsinθ, even j ↔ cos for m ≠ 0",
            "unit": "um of surface height",
            "normalisation_radius_mm": model.normalisation_radius_mm,
            "num_zernike": lens.num_zernike,
            "trainable_indices": list(lens.trainable_indices),
            "coefficients_um": coefficients,
        },
        "base_lens": {
            "enabled": lens.base_lens,
            "form": "thin plano-convex paraboloid: h_base(r) = -r² / (2 f (n(λ_design) - 1))",
            "focal_length_mm": lens.focal_length_mm,
            "design_wavelength_nm": lens.design_wavelength_nm,
            "vertex_radius_mm": None if not lens.base_lens else model.base_radius_mm,
            "conic": -1.0,
        },
        "material": {
            "name": lens.material.name,
            "constant_index": lens.material.constant_index,
            "refractive_index": {
                f"{w:g}": n
                for w, n in zip(lens.wavelengths_nm, lens.refractive_indices, strict=True)
            },
            "refractive_index_design": n_design,
        },
        "wavelengths_nm": list(lens.wavelengths_nm),
        "pupil_grid": lens.pupil_grid,
        "pupil_pitch_um": lens.pupil_pitch_um,
        "aperture_diameter_mm": 2 * model.normalisation_radius_mm,
        "sensor_distance_mm": lens.sensor_distance_mm,
        "object_distance_mm": lens.object_distance_mm,
        "sensor_pitch_um": lens.sensor_pitch_um,
        "psf_size_px": lens.psf_size_px,
        "fabrication_tolerance_um": lens.fabrication_tolerance_um,
        "camera_config": config,
    }


def _fail(source: str, message: str) -> ValueError:
    return ValueError(f"{source}: {message}")


def camera_from_lens_dict(data: Mapping[str, Any], source: str = "lens file") -> Camera:
    """Rebuild the camera described by a lens.json dict (see :func:`lens_to_dict`).

    A hand-written file needs ``schema``, ``schema_version`` and ``zernike`` (``ordering``,
    ``normalisation``, ``coefficients_um``); ``camera_config`` defaults to CameraConfig().
    """
    if not isinstance(data, Mapping):
        raise _fail(source, f"expected a JSON object, got {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise _fail(
            source,
            f"schema {data.get('schema')!r} is not a privcam lens file (expected "
            f"'schema': '{SCHEMA}')",
        )
    version = data.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise _fail(
            source,
            f"unsupported schema_version {version!r}; this privcam reads "
            f"{list(SUPPORTED_SCHEMA_VERSIONS)}. Re-export the lens with this privcam version "
            "or convert the file",
        )
    zern = data.get("zernike")
    if not isinstance(zern, Mapping) or "coefficients_um" not in zern:
        raise _fail(source, "missing 'zernike' block with 'coefficients_um'")
    ordering = str(zern.get("ordering", "")).lower()
    if ordering != ORDERING:
        raise _fail(
            source,
            f"Zernike ordering {zern.get('ordering')!r} is not supported; privcam reads "
            f"'{ORDERING}' (Noll 1976, j >= 1). Convert the coefficients (e.g. ANSI/OSA or "
            "Fringe → Noll) and set 'ordering': 'noll'",
        )
    normalisation = str(zern.get("normalisation", "")).lower()
    if normalisation != NORMALISATION:
        raise _fail(
            source,
            f"Zernike normalisation {zern.get('normalisation')!r} is not supported; privcam "
            f"reads '{NORMALISATION}' (RMS 1 on the unit disk). Multiply each coefficient by "
            "its norm factor to convert and set 'normalisation': 'rms'",
        )
    raw = zern["coefficients_um"]
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        items = [(j, v) for j, v in enumerate(raw, start=1)]
    else:
        raise _fail(source, "'coefficients_um' must map Noll index → µm (or list them from Z1)")
    coefficients: dict[int, float] = {}
    for key, value in items:
        try:
            j, c = int(key), float(value)
        except (TypeError, ValueError):
            raise _fail(source, f"bad coefficient entry {key!r}: {value!r}") from None
        if j < 1 or not math.isfinite(c):
            raise _fail(source, f"coefficient Z{j} = {value!r}: need Noll index >= 1, finite µm")
        coefficients[j] = c
    config_dict = dict(data.get("camera_config") or {})
    try:
        config = CameraConfig.from_dict(config_dict)
    except (TypeError, ValueError) as err:
        raise _fail(source, f"bad camera_config: {err}") from err
    if not config.has_lens:
        raise _fail(source, f"camera_config preset {config.preset!r} has no lens")
    if "num_zernike" not in config_dict:
        config.num_zernike = max(coefficients, default=1)
    too_high = sorted(j for j, c in coefficients.items() if j > config.num_zernike and c != 0)
    if too_high:
        raise _fail(
            source,
            f"coefficients {too_high} exceed num_zernike={config.num_zernike}; raise "
            "camera_config.num_zernike",
        )
    radius_mm = config.pupil_grid * config.pupil_pitch_um / 2 * 1e-3
    given = zern.get("normalisation_radius_mm")
    if given is not None and not math.isclose(float(given), radius_mm, rel_tol=1e-9):
        raise _fail(
            source,
            f"normalisation_radius_mm={given} does not match the camera aperture radius "
            f"{radius_mm:g} mm (pupil_grid × pupil_pitch_um / 2); fix camera_config.pupil_grid "
            "/ pupil_pitch_um or rescale the coefficients",
        )
    config.initial_coefficients_um = {
        j: c for j, c in coefficients.items() if j <= config.num_zernike
    }
    if zern.get("trainable_indices") is not None:
        config.trainable_indices = [int(j) for j in zern["trainable_indices"]]
    config.initial_defocus_um = 0.0
    config.init_std_um = 0.0
    camera = Camera(config)
    _check_copies_agree(data, camera, source)
    return camera


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (
            isinstance(a, (list, tuple))
            and isinstance(b, (list, tuple))
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def _check_copies_agree(data: Mapping[str, Any], camera: Camera, source: str) -> None:
    """lens.json repeats the physical parameters at the top level for readers; privcam builds the
    camera from ``camera_config``. A file whose copies disagree (one was edited) is refused."""
    lens = _lens_of(camera)
    base = data.get("base_lens") if isinstance(data.get("base_lens"), Mapping) else {}
    material = data.get("material") if isinstance(data.get("material"), Mapping) else {}
    copies = {
        "wavelengths_nm": (data.get("wavelengths_nm"), list(lens.wavelengths_nm)),
        "pupil_grid": (data.get("pupil_grid"), lens.pupil_grid),
        "pupil_pitch_um": (data.get("pupil_pitch_um"), lens.pupil_pitch_um),
        "sensor_distance_mm": (data.get("sensor_distance_mm"), lens.sensor_distance_mm),
        "object_distance_mm": (data.get("object_distance_mm"), lens.object_distance_mm),
        "sensor_pitch_um": (data.get("sensor_pitch_um"), lens.sensor_pitch_um),
        "psf_size_px": (data.get("psf_size_px"), lens.psf_size_px),
        "fabrication_tolerance_um": (
            data.get("fabrication_tolerance_um"),
            lens.fabrication_tolerance_um,
        ),
        "base_lens.enabled": (base.get("enabled"), lens.base_lens),
        "base_lens.focal_length_mm": (base.get("focal_length_mm"), lens.focal_length_mm),
        "base_lens.design_wavelength_nm": (
            base.get("design_wavelength_nm"),
            lens.design_wavelength_nm,
        ),
        "material.name": (material.get("name"), lens.material.name),
        "material.constant_index": (material.get("constant_index"), lens.material.constant_index),
    }
    present = {
        "object_distance_mm",
        "sensor_pitch_um",
        "base_lens.focal_length_mm",
        "material.constant_index",
    }  # may legitimately be null: compare when the key exists
    for key, (given, built) in copies.items():
        head, _, tail = key.partition(".")
        block = data if not tail else (base if head == "base_lens" else material)
        if (tail or head) not in block:
            continue  # hand-written files may leave the copies out
        if given is None and key not in present:
            continue
        if not _same(given, built):
            raise _fail(
                source,
                f"top-level {key}={given!r} disagrees with camera_config, from which privcam "
                f"builds the lens ({built!r}); edit camera_config (and the copy) or restore the "
                "exported value",
            )


def load_lens_json(path: str | Path) -> Camera:
    """Rebuild the exported camera from a ``lens.json`` (or a hand-written coefficients file)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"coefficients file {path} is a directory; pass its lens.json")
    if not path.is_file():
        raise FileNotFoundError(f"coefficients file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    return camera_from_lens_dict(data, str(path))


# --------------------------------------------------------------------------- file writers


def _grid_sag_samples(model: fab.SurfaceModel, n: int, pitch_um: float) -> np.ndarray:
    """Analytic sag on the Grid Sag grid: (n+1)² points centred on the vertex, x, y =
    (i − n/2)·pitch — the lens's n² pupil samples (rows/columns 0..n−1) plus one column at +x
    and one row at −y, all outside the aperture, so the grid is symmetric as OpticStudio
    expects and needs no decentre.

    Returns:
        (5, n+1, n+1): z (mm), dz/dx, dz/dy (mm/mm), d²z/dxdy (1/mm), nodata (1 outside the
        aperture, where the rest is 0); row 0 = +y, column 0 = −x.
    """
    m = n + 1
    i = np.arange(m) - n / 2
    coords = i * pitch_um * 1e-3
    x, y = np.meshgrid(coords, coords[::-1])
    inside = 4 * (i[None, :] ** 2 + i[:, None] ** 2) < n * n
    out = np.zeros((5, m, m))
    out[4] = 1.0
    out[:4, inside] = np.stack(model.sag_mm(x[inside], y[inside]))
    out[4, inside] = 0.0
    return out


def _write_grid_sag(path: Path, samples: np.ndarray, pitch_um: float) -> None:
    """Zemax Grid Sag file from :func:`_grid_sag_samples` (lens units mm, unitflag 0)."""
    m = samples.shape[-1]
    pitch_mm = pitch_um * 1e-3
    with open(path, "w") as f:
        f.write(f"{m} {m} {pitch_mm:.12g} {pitch_mm:.12g} 0 0 0\n")
        np.savetxt(f, samples.reshape(5, -1).T, fmt=["%.12e", "%.12e", "%.12e", "%.12e", "%d"])


def read_grid_sag(path: str | Path) -> dict[str, Any]:
    """Parse a Grid Sag file into ``z``, ``dzdx``, ``dzdy``, ``d2zdxdy`` (ny, nx) arrays in file
    order (row 0 = first data row = +y), ``nodata`` (ny, nx) bool and the header values."""
    with open(path) as f:
        head = f.readline().split()
        data = np.loadtxt(f, ndmin=2)
    nx, ny = int(head[0]), int(head[1])
    cols = data.reshape(ny, nx, 5)
    return {
        "nx": nx,
        "ny": ny,
        "delx": float(head[2]),
        "dely": float(head[3]),
        "unitflag": int(head[4]),
        "xdec": float(head[5]),
        "ydec": float(head[6]),
        "z": cols[..., 0],
        "dzdx": cols[..., 1],
        "dzdy": cols[..., 2],
        "d2zdxdy": cols[..., 3],
        "nodata": cols[..., 4] != 0,
    }


def _write_zernike_standard_sag(path: Path, model: fab.SurfaceModel, lens: ZernikeLens) -> str:
    coeffs = model.coefficients_um[: lens.num_zernike]
    q = len(coeffs)
    tail = coeffs[ZEMAX_MAX_STANDARD_TERMS:]
    tail_rms_um = float(np.sqrt(np.sum(tail**2)))  # RMS-normalised → RMS of the dropped part
    note = ""
    if q > ZEMAX_MAX_STANDARD_TERMS:
        note = (
            f"OpticStudio's Zernike Standard Sag surface takes at most {ZEMAX_MAX_STANDARD_TERMS}"
            f" terms; this lens has {q}. Entering only Z1..Z{ZEMAX_MAX_STANDARD_TERMS} leaves out"
            f" {tail_rms_um * 1e3:.3g} nm RMS of surface height — use surface.dat (Grid Sag,"
            " full surface) when that matters."
        )
    radius = model.base_radius_mm
    lines = [
        "# privcam export: OpticStudio 'Zernike Standard Sag' surface coefficients",
        "# sag z(x, y) = c r^2 / (1 + sqrt(1 - (1 + k) c^2 r^2)) + sum_i Zi * Z_i(rho, theta),",
        "#   c = 1/radius_mm, k = conic (the base lens is the paraboloid h = r^2/(2 radius)),",
        "#   rho = r / normalization_radius_mm, theta measured from +x towards +y.",
        "# Zernike Standard (OpticStudio) = Noll order and Noll RMS normalisation (Z2 = 2 rho",
        "#   cos theta, Z3 = 2 rho sin theta, Z5 = sqrt6 rho^2 sin 2theta, Z7 = sqrt8 (3 rho^3 - 2",
        "#   rho) sin theta, ...): identical to privcam's convention, so no reordering or",
        "#   renormalisation; only the unit changes, um -> mm (lens units, mm).",
        "# Sign: z = glass height h (more glass = larger z), i.e. the sag of the structured",
        "#   face when it is the exit face of a plano element (glass on the -z side). For the",
        "#   structured face as entrance face (glass on +z), negate the radius and every Zi.",
        "# Extrapolate = 0: the surface is defined inside the normalization radius only.",
    ]
    if note:
        lines.append("# NOTE: " + note)
    lines += [
        f"normalization_radius_mm {model.normalisation_radius_mm:.12g}",
        f"radius_mm {radius:.12g}" if math.isfinite(radius) else "radius_mm inf",
        "conic -1" if math.isfinite(radius) else "conic 0",
        f"number_of_terms {q}",
    ]
    lines += [f"Z{j} {c * 1e-3:.12e}" for j, c in enumerate(coeffs, start=1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return note


def _png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)


def _write_tiff(path: Path, levels: np.ndarray, description: dict[str, Any]) -> None:
    import tifffile

    res = 1e4 / float(description["pixel_pitch_um"])  # pixels per cm
    tifffile.imwrite(
        path,
        levels.astype(np.uint16),
        description=json.dumps(description),
        metadata=None,
        resolution=(res, res),
        resolutionunit="CENTIMETER",
    )


# --------------------------------------------------------------------------- figures


def _figures(
    out: Path,
    lens: ZernikeLens,
    psf: np.ndarray,
    height_rel_um: np.ndarray,
    freeform_um: np.ndarray,
    mtf: tuple[np.ndarray, np.ndarray],
    mtf_ideal: np.ndarray,
    mc: dict[str, np.ndarray] | None,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    written = []
    lam = lens.wavelengths_nm
    k = psf.shape[-1]
    half_um = k / 2 * lens.sensor_pitch_um
    ext_psf = (-half_um, half_um, -half_um, half_um)
    fig, axes = plt.subplots(1, len(lam), figsize=(4 * len(lam), 3.6), squeeze=False)
    for ax, p, w in zip(axes[0], psf, lam, strict=True):
        im = ax.imshow(
            np.log10(np.maximum(p, 1e-9)),
            extent=ext_psf,
            cmap="magma",
            vmin=max(np.log10(p.max()) - 6, -9),
        )
        ax.set_title(f"PSF {w:g} nm (log10)")
        ax.set_xlabel("x (µm)")
        ax.set_ylabel("y (µm)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(out / "psf.png", dpi=110)
    plt.close(fig)
    written.append("psf.png")

    r_mm = lens.pupil_grid * lens.pupil_pitch_um / 2e3
    ext = (-r_mm, r_mm, -r_mm, r_mm)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, img, title in (
        (axes[0], height_rel_um, "surface height (µm above lowest point)"),
        (axes[1], freeform_um, "freeform part: Zernike − piston/tip/tilt (µm)"),
    ):
        im = ax.imshow(img, extent=ext, cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
        fig.colorbar(im, ax=ax, shrink=0.85, label="µm")
    fig.tight_layout()
    fig.savefig(out / "height.png", dpi=110)
    plt.close(fig)
    written.append("height.png")

    freqs, curves = mtf
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = ["tab:blue", "tab:green", "tab:red", "tab:purple", "tab:orange"]
    for i, w in enumerate(lam):
        c = colors[i % len(colors)]
        ax.plot(freqs, curves[i], color=c, label=f"{w:g} nm")
        ax.plot(freqs, mtf_ideal[i], color=c, ls="--", lw=0.8)
    ax.set_xlabel("spatial frequency (cycles/mm)")
    ax.set_ylabel("MTF (radial mean)")
    ax.set_title("MTF per wavelength (dashed: aberration-free lens)")
    ax.set_ylim(0, 1.02)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "mtf.png", dpi=110)
    plt.close(fig)
    written.append("mtf.png")

    if mc is not None and len(mc["strehl"]):
        fig, axes = plt.subplots(1, len(lam), figsize=(4 * len(lam), 3.4), squeeze=False)
        x_um = (np.arange(k) - k // 2) * lens.sensor_pitch_um
        for i, (ax, w) in enumerate(zip(axes[0], lam, strict=True)):
            row = int(np.unravel_index(np.argmax(psf[i]), psf[i].shape)[0])
            mean, std = mc["mean_psf"][i, row], mc["std_psf"][i, row]
            ax.semilogy(x_um, np.maximum(psf[i, row], 1e-9), "k", lw=1, label="nominal")
            ax.semilogy(x_um, np.maximum(mean, 1e-9), "tab:red", lw=0.8, label="MC mean")
            ax.fill_between(
                x_um,
                np.maximum(mean - std, 1e-9),
                mean + std,
                color="tab:red",
                alpha=0.3,
                label="± 1 std",
            )
            s = mc["strehl"][:, i]
            ax.set_title(f"{w:g} nm: Strehl {s.mean():.4f} ± {s.std():.2g}", fontsize=10)
            ax.set_xlabel("x (µm), row through the peak")
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "fabrication_error.png", dpi=110)
        plt.close(fig)
        written.append("fabrication_error.png")
    return written


# --------------------------------------------------------------------------- export


def _fmt(x: float | None, spec: str = ".4g", unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return format(x, spec) + unit


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
    lens = _lens_of(camera, source or "camera")
    out = Path(out_dir)
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
    limits = ProcessLimits() if limits is None else limits
    tol = lens.fabrication_tolerance_um if tolerance_um is None else float(tolerance_um)
    if not tol >= 0:  # also NaN
        raise ValueError(f"--tolerance-um must be a finite number >= 0, got {tol}")

    if lens.fixed_coefficients_um.device.type != "cpu":  # export runs on the CPU
        camera = copy.deepcopy(camera).cpu()
        lens = _lens_of(camera)
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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        camera.train(was_training)
    log.info("exported lens to %s in %.1f s", out, summary["seconds"])
    return summary


MARKER = ".privcam-export"


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
    n, pitch_um = lens.pupil_grid, lens.pupil_pitch_um
    lam = lens.wavelengths_nm
    model = fab.SurfaceModel.from_lens(lens)
    mask = fab.aperture_mask(n)
    x_mm, y_mm = fab.pupil_coordinates_mm(n, pitch_um)

    # --- analytic surface (float64) on the Grid Sag grid, which contains the pupil grid
    samples = _grid_sag_samples(model, n, pitch_um)
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
    rms_um = float(height_um[mask].std())
    slope = np.hypot(zx, zy)
    max_slope_deg = float(np.degrees(np.arctan(slope.max())))
    min_step = max(1e-3, 1e-3 * pv_um)
    feature_um = fab.smallest_feature_um(height_um, mask, pitch_um, min_step)
    free_pv = float(free[mask].max() - free[mask].min())
    feature_free_um = fab.smallest_feature_um(free, mask, pitch_um, max(1e-3, 1e-3 * free_pv))
    rel = np.where(mask, height_um - lo, np.nan)

    files: list[str] = []
    # --- height maps
    np.save(out / "height_um.npy", rel)
    np.savetxt(out / "height_um.csv", rel, fmt="%.6f", delimiter=",")
    scale = pv_um / TIFF_LEVELS if pv_um > 0 else 1.0
    tiff_levels = np.where(mask, np.rint(np.nan_to_num(rel) / scale), 0).astype(np.uint16)
    tiff_info = {
        "quantity": "surface height above the lowest point in the aperture",
        "um_per_level": scale,
        "offset_um": 0.0,
        "outside_aperture": 0,
        "pixel_pitch_um": pitch_um,
        "orientation": "row 0 = +y (top), column 0 = -x",
    }
    _write_tiff(out / "height_um.tif", tiff_levels, tiff_info)
    files += ["height_um.npy", "height_um.csv", "height_um.tif"]

    # --- Zemax files
    _write_grid_sag(out / "surface.dat", samples, pitch_um)
    zss_note = _write_zernike_standard_sag(out / "zernike_standard_sag.txt", model, lens)
    files += ["surface.dat", "zernike_standard_sag.txt"]

    # --- PSFs. Strehl and encircled energy use the intensity at the pupil pitch (finer than
    # the sensor pixels) without normalisation: both lenses pass the same pupil energy.
    with torch.no_grad():
        psf = lens().double().cpu().numpy()
        nominal_int = lens.field_intensity().double().cpu().numpy()
    ideal_int = fab.ideal_intensity(lens).double().numpy()
    ideal = fab.intensity_to_psf(lens, torch.from_numpy(ideal_int)).numpy()
    analytic_int = fab.intensity_from_height(lens, height_um).double().numpy()
    analytic_psf = fab.intensity_to_psf(lens, torch.from_numpy(analytic_int)).numpy()
    for w, p in zip(lam, psf, strict=True):
        name = f"psf_{w:g}nm.npy"
        np.save(out / name, p.astype(np.float32))
        files.append(name)
    pupil_energy = float(lens.num_aperture)  # Σ|field|² of the unit-amplitude aperture
    strehl = fab.strehl_ratio(nominal_int, ideal_int)
    resample = lens.resample_matrix.double().cpu()

    def pixel_peak(intensity: np.ndarray) -> np.ndarray:
        return fn.area_resample(torch.from_numpy(intensity), resample).numpy()

    pixel_strehl = fab.strehl_ratio(pixel_peak(nominal_int), pixel_peak(ideal_int))
    ee = fab.encircled_energy_radius_um(nominal_int, pitch_um, (0.5, 0.8), pupil_energy)
    ee_ideal = fab.encircled_energy_radius_um(ideal_int, pitch_um, (0.5, 0.8), pupil_energy)
    mtf = fab.radial_mtf(psf, lens.sensor_pitch_um)
    mtf_ideal = fab.radial_mtf(ideal, lens.sensor_pitch_um)[1]
    analytic_corr = fab.psf_correlation(analytic_psf, psf)
    analytic_strehl = fab.strehl_ratio(analytic_int, ideal_int)

    # --- multi-level maps
    n_design = float(lens.material.refractive_index(lens.design_wavelength_nm))
    wrap_um = lens.design_wavelength_nm * 1e-3 / (n_design - 1) if wrap_levels else None
    quant: dict[str, Any] = {}
    for count in levels:
        q = fab.quantize_height(height_um, mask, count, wrap_um)
        bits = 8 if count <= 256 else 16
        full = 2**bits - 1
        grey = np.rint(q.level * (full / (count - 1))).astype(np.uint8 if bits == 8 else np.uint16)
        _png(out / f"levels_{count}.png", grey)
        table = np.column_stack(
            [np.arange(count), np.rint(np.arange(count) * full / (count - 1)), q.level_heights_um]
        )
        np.savetxt(
            out / f"levels_{count}.csv",
            table,
            delimiter=",",
            fmt=["%d", "%d", "%.6f"],
            header="level,grey_value,height_um_above_level_0",
            comments="",
        )
        files += [f"levels_{count}.png", f"levels_{count}.csv"]
        q_int = fab.intensity_from_height(lens, q.height_um).double()
        qpsf = fab.intensity_to_psf(lens, q_int).numpy()
        q_strehl = fab.strehl_ratio(q_int.numpy(), ideal_int)
        quant[str(count)] = {
            "bits": bits,
            "step_um": q.step_um,
            "rms_error_um": float(np.sqrt(np.mean((q.height_um - height_um)[mask] ** 2)))
            if wrap_um is None
            else None,
            "psf_correlation": fab.psf_correlation(qpsf, analytic_psf).tolist(),
            "strehl": q_strehl.tolist(),
            "strehl_change": (q_strehl - analytic_strehl).tolist(),
        }

    # --- Monte-Carlo fabrication tolerance
    mc = None
    mc_summary: dict[str, Any] = {"draws": draws, "tolerance_um": tol}
    if draws > 0 and tol > 0:
        mc = fab.monte_carlo_psfs(lens, height_um, analytic_psf, ideal_int, draws, tol, seed)
        mc_summary.update(
            strehl_mean=mc["strehl"].mean(0).tolist(),
            strehl_std=mc["strehl"].std(0).tolist(),
            correlation_mean=mc["correlation"].mean(0).tolist(),
            correlation_std=mc["correlation"].std(0).tolist(),
            correlation_min=mc["correlation"].min(0).tolist(),
        )
    elif draws > 0:
        mc_summary["note"] = "tolerance is 0: no draws"

    # --- limits
    warnings: list[str] = []
    if limits.max_sag_um is not None and pv_um > limits.max_sag_um:
        warnings.append(
            f"sag depth (peak-to-valley) {pv_um:.3f} µm exceeds the process limit "
            f"{limits.max_sag_um:g} µm (--max-sag-um)"
        )
    if limits.max_slope_deg is not None and max_slope_deg > limits.max_slope_deg:
        warnings.append(
            f"maximum slope {max_slope_deg:.2f}° exceeds the process limit "
            f"{limits.max_slope_deg:g}° (--max-slope-deg)"
        )
    if (
        limits.min_feature_um is not None
        and feature_um is not None
        and feature_um < limits.min_feature_um
    ):
        warnings.append(
            f"smallest feature {feature_um:.2f} µm is below the process limit "
            f"{limits.min_feature_um:g} µm (--min-feature-um)"
        )
    if zss_note:
        warnings.append(zss_note)
    for msg in warnings:
        log.warning(msg)

    # --- lens.json
    doc = lens_to_dict(camera)
    doc["height_map"] = {
        "files": ["height_um.npy", "height_um.csv", "height_um.tif"],
        "grid": [n, n],
        "pixel_pitch_um": pitch_um,
        "orientation": "row 0 = +y (top), column 0 = -x; sample (row, col) at x = (col - N/2)·p,"
        " y = (N/2 - row)·p",
        "quantity": "height above the lowest point in the aperture (µm); NaN outside (npy/csv)",
        "offset_um": lo,
        "offset_note": "model height = file height + offset_um",
        "tiff_um_per_level": scale,
        "tiff_outside_aperture": 0,
        "peak_to_valley_um": pv_um,
    }
    (out / "lens.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    files.insert(0, "lens.json")

    if not quick:
        files += _figures(out, lens, psf, rel, np.where(mask, free, np.nan), mtf, mtf_ideal, mc)

    lam_keys = [f"{w:g}" for w in lam]
    summary: dict[str, Any] = {
        "source": source,
        "pupil_grid": n,
        "num_zernike": lens.num_zernike,
        "aperture_diameter_mm": 2 * r_mm,
        "peak_to_valley_um": pv_um,
        "rms_height_um": rms_um,
        "tiff_um_per_level": scale,
        "freeform_peak_to_valley_um": free_pv,
        "freeform_rms_um": float(free[mask].std()),
        "max_slope_deg": max_slope_deg,
        "smallest_feature_um": feature_um,
        "smallest_freeform_feature_um": feature_free_um,
        "phase_step_rad": float(lens.check_phase_sampling()),
        "strehl": dict(zip(lam_keys, strehl.tolist(), strict=True)),
        "pixel_strehl": dict(zip(lam_keys, pixel_strehl.tolist(), strict=True)),
        "ee50_um": dict(zip(lam_keys, _finite_or_none(ee[:, 0]), strict=True)),
        "ee80_um": dict(zip(lam_keys, _finite_or_none(ee[:, 1]), strict=True)),
        "ee50_ideal_um": dict(zip(lam_keys, _finite_or_none(ee_ideal[:, 0]), strict=True)),
        "ee80_ideal_um": dict(zip(lam_keys, _finite_or_none(ee_ideal[:, 1]), strict=True)),
        "analytic_vs_lens_psf_correlation": analytic_corr.tolist(),
        "levels": quant,
        "wrap_levels_um": wrap_um,
        "monte_carlo": mc_summary,
        "limits": asdict(limits),
        "warnings": warnings,
        "files": [*files, "report.md", "summary.json"],
    }
    summary["seconds"] = time.perf_counter() - t0
    (out / "report.md").write_text(_report(summary, lens, model, quick), encoding="utf-8")
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _report(s: dict[str, Any], lens: ZernikeLens, model: fab.SurfaceModel, quick: bool) -> str:
    lam = [f"{w:g}" for w in lens.wavelengths_nm]
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
    wrap = s["wrap_levels_um"]
    out += [
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
    mc = s["monte_carlo"]
    out += ["", "## Fabrication tolerance (Monte Carlo)", ""]
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
    out += [
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
        "K//2), figures, `summary.json`.",
        "",
        f"Export time: {s['seconds']:.1f} s.",
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- CLI


def _optional_float(text: str) -> float | None:
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number or 'none', got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m optics.export",
        description="Export a learned privcam lens for fabrication (see optics/export.py).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", type=Path, help="Lightning checkpoint or save_camera file")
    src.add_argument("--coefficients", type=Path, help="lens.json coefficients file")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=list(DEFAULT_LEVELS),
        help="level counts of the multi-level maps (default: 4 8 16 256)",
    )
    p.add_argument(
        "--wrap-levels",
        action="store_true",
        help="wrap the height modulo one design wave before quantising",
    )
    p.add_argument("--monte-carlo", type=int, default=16, help="fabrication-error draws")
    p.add_argument(
        "--tolerance-um",
        type=finite_float,
        default=None,
        help="uniform height error half-width (default: the lens's tolerance)",
    )
    p.add_argument("--seed", type=int, default=0)
    for flag, default, what in (
        ("--max-sag-um", ProcessLimits.max_sag_um, "deepest structure (PV height), µm"),
        ("--max-slope-deg", ProcessLimits.max_slope_deg, "steepest slope, degrees"),
        ("--min-feature-um", ProcessLimits.min_feature_um, "narrowest hill/valley, µm"),
    ):
        p.add_argument(
            flag, type=_optional_float, default=default, help=f"{what} ('none': no check)"
        )
    p.add_argument("--quick", action="store_true", help="skip the figures")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m optics.export ...``: bad input gives one line ``error: ...`` (exit 2);
    ``--debug`` or ``PRIVCAM_DEBUG=1`` shows the traceback."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.ckpt is not None:
        camera, source = load_camera(args.ckpt), str(args.ckpt)
    else:
        camera, source = load_lens_json(args.coefficients), str(args.coefficients)
    summary = export_lens(
        camera,
        args.out,
        levels=args.levels,
        wrap_levels=args.wrap_levels,
        monte_carlo=args.monte_carlo,
        tolerance_um=args.tolerance_um,
        limits=ProcessLimits(args.max_sag_um, args.max_slope_deg, args.min_feature_um),
        overwrite=args.overwrite,
        quick=args.quick,
        seed=args.seed,
        source=source,
    )
    print(f"exported {source} → {summary['out_dir']} in {summary['seconds']:.1f} s")
    print(
        f"PV {summary['peak_to_valley_um']:.3f} µm, max slope {summary['max_slope_deg']:.2f}°, "
        "Strehl " + ", ".join(f"{k} nm {v:.3f}" for k, v in summary["strehl"].items())
    )
    for w in summary["warnings"]:
        print(f"warning: {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

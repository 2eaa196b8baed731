"""``lens.json``: the schema-versioned lens file (write, read, validate).

Coefficients are Noll-ordered, RMS-normalised, µm of surface height, with the normalisation
radius, material, n(λ), geometry and the full CameraConfig; :func:`load_lens_json` rebuilds the
exact camera from it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import fabrication as fab
from ..camera import Camera, CameraConfig
from ..lens import ZernikeLens

__all__ = [
    "NORMALISATION",
    "ORDERING",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "camera_from_lens_dict",
    "lens_of",
    "lens_to_dict",
    "load_lens_json",
]

SCHEMA = "privcam.lens"
# 2: camera_config holds the lens options under "lens" (CameraConfig.lens); version 1 files
# (flat camera_config) read the same
SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
ORDERING = "noll"
NORMALISATION = "rms"  # mean of Z_j·Z_k over the unit disk = δ_jk (Noll 1976)


def lens_of(camera: Camera, what: str = "camera") -> ZernikeLens:
    if not isinstance(camera, Camera):
        raise TypeError(f"expected an optics.Camera, got {type(camera).__name__}")
    if camera.lens is None:
        raise ValueError(
            f"{what} is a '{camera.config.preset}' camera without a lens: nothing to export. "
            "Export a 'privacy' or 'defocus' camera (a checkpoint trained with a lens)"
        )
    if not getattr(camera.lens, "has_surface", False):
        raise ValueError(
            f"{what} is a '{camera.config.preset}' camera: its lens is a measured PSF without "
            "a surface, nothing to fabricate. Export the designed lens's checkpoint instead"
        )
    return camera.lens


def lens_to_dict(camera: Camera) -> dict[str, Any]:
    """The lens.json content (without the height-map block) for a camera with a lens."""
    lens = lens_of(camera)
    coeffs = lens.coefficients_um().detach().double().cpu().numpy()
    extra = coeffs[lens.num_zernike :]
    if np.any(extra != 0):  # padding partners are never set; guard anyway
        raise ValueError(f"lens has non-zero coefficients beyond num_zernike: {extra.tolist()}")
    coefficients = {str(j): float(coeffs[j - 1]) for j in range(1, lens.num_zernike + 1)}
    config = camera.config.to_dict()
    config["lens"].update(
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
    zern = _zernike_block(data, source)
    coefficients = _coefficients(zern["coefficients_um"], source)
    config_dict = dict(data.get("camera_config") or {})
    try:
        config = CameraConfig.from_dict(config_dict)
    except (TypeError, ValueError) as err:
        raise _fail(source, f"bad camera_config: {err}") from err
    if not config.has_lens:
        raise _fail(source, f"camera_config preset {config.preset!r} has no lens")
    given_lens = {**(config_dict.get("lens") or {}), **config_dict}  # version 1: flat
    lens = config.lens
    if "num_zernike" not in given_lens:
        lens = lens.replace(num_zernike=max(coefficients, default=1))
    too_high = sorted(j for j, c in coefficients.items() if j > lens.num_zernike and c != 0)
    if too_high:
        raise _fail(
            source,
            f"coefficients {too_high} exceed num_zernike={lens.num_zernike}; raise "
            "camera_config.lens.num_zernike",
        )
    radius_mm = lens.pupil_grid * lens.pupil_pitch_um / 2 * 1e-3
    given = zern.get("normalisation_radius_mm")
    if given is not None and not math.isclose(float(given), radius_mm, rel_tol=1e-9):
        raise _fail(
            source,
            f"normalisation_radius_mm={given} does not match the camera aperture radius "
            f"{radius_mm:g} mm (pupil_grid × pupil_pitch_um / 2); fix camera_config.lens."
            "pupil_grid / pupil_pitch_um or rescale the coefficients",
        )
    trainable = zern.get("trainable_indices")
    config.lens = lens.replace(
        initial_coefficients_um={j: c for j, c in coefficients.items() if j <= lens.num_zernike},
        trainable_indices=lens.trainable_indices
        if trainable is None
        else [int(j) for j in trainable],
        initial_defocus_um=0.0,
        init_std_um=0.0,
    )
    camera = Camera(config)
    _check_copies_agree(data, camera, source)
    return camera


def _zernike_block(data: Any, source: str) -> Mapping[str, Any]:
    """Check the file's schema and the Zernike conventions; returns the ``zernike`` block."""
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
    return zern


def _coefficients(raw: Any, source: str) -> dict[int, float]:
    """``coefficients_um`` (Noll index → µm, or a list from Z1) as {j: c}, checked."""
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
    return coefficients


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
    lens = lens_of(camera)
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

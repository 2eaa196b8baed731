"""Raster files of the export: height maps (npy / csv / 16-bit TIFF), multi-level maps
(PNG + level table) and PSFs (npy). Each writer returns the names it wrote."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import fabrication as fab

__all__ = ["TIFF_LEVELS", "write_height_maps", "write_level_map", "write_psfs"]

TIFF_LEVELS = 65535


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


def write_height_maps(
    out: Path, rel_um: np.ndarray, mask: np.ndarray, pv_um: float, pitch_um: float
) -> tuple[list[str], float]:
    """``height_um.npy/.csv/.tif`` from the height above the lowest point ``rel_um`` (N, N; NaN
    outside ``mask``). Returns (file names, TIFF µm per level)."""
    np.save(out / "height_um.npy", rel_um)
    np.savetxt(out / "height_um.csv", rel_um, fmt="%.6f", delimiter=",")
    scale = pv_um / TIFF_LEVELS if pv_um > 0 else 1.0
    tiff_levels = np.where(mask, np.rint(np.nan_to_num(rel_um) / scale), 0).astype(np.uint16)
    tiff_info = {
        "quantity": "surface height above the lowest point in the aperture",
        "um_per_level": scale,
        "offset_um": 0.0,
        "outside_aperture": 0,
        "pixel_pitch_um": pitch_um,
        "orientation": "row 0 = +y (top), column 0 = -x",
    }
    _write_tiff(out / "height_um.tif", tiff_levels, tiff_info)
    return ["height_um.npy", "height_um.csv", "height_um.tif"], scale


def write_level_map(out: Path, q: fab.QuantizedHeight, count: int) -> tuple[list[str], int]:
    """``levels_<count>.png`` (grey = level·(2^bits−1)/(count−1), 8-bit up to 256 levels,
    16-bit above) and ``levels_<count>.csv`` (level → grey value → height). Returns (names,
    bits)."""
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
    return [f"levels_{count}.png", f"levels_{count}.csv"], bits


def write_psfs(
    out: Path, psf: np.ndarray, wavelengths_nm: Sequence[float], pitch_um: float
) -> list[str]:
    """``psf.npz`` (the camera preset ``measured`` reads it as it is: ``psf`` (Λ, K, K) float32,
    ``pitch_um`` the sensor pitch, ``wavelengths_nm``, ``background`` 0, ``axis_px`` the
    optical axis at (K//2, K//2)) and ``psf_<λ>nm.npy`` (K, K) float32 per
    wavelength of ``psf`` (Λ, K, K)."""
    np.savez(
        out / "psf.npz",
        psf=psf.astype(np.float32),
        pitch_um=np.float64(pitch_um),
        background=np.float64(0.0),  # simulated: no background to estimate from the border
        axis_px=np.array([psf.shape[-2] // 2, psf.shape[-1] // 2], dtype=np.float64),
        wavelengths_nm=np.asarray(wavelengths_nm, dtype=np.float64),
    )
    names = ["psf.npz"]
    for w, p in zip(wavelengths_nm, psf, strict=True):
        name = f"psf_{w:g}nm.npy"
        np.save(out / name, p.astype(np.float32))
        names.append(name)
    return names

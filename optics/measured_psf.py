"""Reading a PSF measured on an optical bench (a point source imaged through the lens as made).

A bench image is not a PSF yet: it has a background (dark current, stray light), the spot sits
anywhere on the bench camera's sensor, its pixels have the bench camera's pitch, and a clipped
peak is a different PSF. :func:`load_measured_psf` turns one into the camera's (C, K, K) PSF:

1. read the file(s): PNG (8-bit RGB/grey, 16-bit grey), TIFF (8/16-bit, grey or RGB, via
   tifffile), ``.npy`` / ``.npz`` (arrays (H, W) or (C, H, W); an ``.npz`` may carry
   ``pitch_um`` and ``background``); one RGB image or one single-channel file per wavelength;
2. refuse saturated pixels (at the integer format's full scale, or ``saturation_level``);
3. subtract the background: a dark frame, the level an ``.npz`` stores (0 in the export's
   ``psf.npz``), or by default the median of the image border;
4. centre on the intensity centroid (sub-pixel: it enters the resampling below; a file that
   stores its optical axis, such as the export's, is centred there) and optionally crop a
   square around it;
5. area-resample from the measurement pitch to the sensor pitch onto the K×K window
   (the same exact-overlap weights as the simulated lens's PSF, ``optics.functional``);
6. clip the noise's negative remainder to 0 and normalise each channel to sum 1.

Every failure is a ``ValueError`` / ``FileNotFoundError`` naming the file and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "SUFFIXES",
    "MeasurementOptions",
    "PSFFile",
    "border_background",
    "centroid_px",
    "load_measured_psf",
    "offset_area_matrix",
    "read_psf_file",
]

SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".npz")


@dataclass(frozen=True)
class MeasurementOptions:
    """How a bench image becomes a PSF (camera options ``psf_*`` in ``CameraConfig``).

    ``pitch_um`` None takes the ``pitch_um`` stored in an ``.npz``; ``border_px`` None uses a
    ring of max(2, min(H, W) // 16) pixels for the background median; ``saturation_level``
    None is the integer format's full scale (no check for float files)."""

    pitch_um: float | None = None
    dark_file: str | None = None
    border_px: int | None = None
    centre: bool = True
    crop_px: int | None = None
    allow_saturated: bool = False
    saturation_level: float | None = None
    max_upsampling: float = 2.0
    min_energy_in_window: float = 0.95


def _png_is_16bit_colour(path: Path) -> bool:
    """IHDR of a PNG: bit depth 16 with colour type 2 (RGB) or 6 (RGBA), which pillow would
    read as 8 bit (losing the low byte)."""
    with path.open("rb") as f:
        head = f.read(26)
    return len(head) == 26 and head[24] == 16 and head[25] in (2, 6)


class PSFFile(NamedTuple):
    """A read measurement: image (C, H, W) float64; the integer format's full scale (None for
    floats); ``pitch_um``, ``background`` (a level, or (C,) levels) and ``axis_px`` (row,
    column of the optical axis) when an ``.npz`` stores them (``python -m optics.export``
    writes background 0 and the axis: a simulated PSF has no background and a known axis)."""

    image: np.ndarray
    full_scale: float | None
    pitch_um: float | None
    background: np.ndarray | None = None
    axis_px: tuple[float, float] | None = None


def read_psf_file(path: str | Path) -> PSFFile:
    """One measurement file (:class:`PSFFile`). RGBA drops alpha; HWC arrays with ≤ 4 channels
    become CHW."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"PSF file {path} {what}; pass the measured PSF image")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"PSF file {path}: unsupported format {suffix!r}; save the measurement as one of "
            f"{', '.join(SUFFIXES)}"
        )
    pitch_um = background = axis_px = None
    try:
        if suffix in (".png",):
            if _png_is_16bit_colour(path):
                raise ValueError(
                    f"PSF file {path} is a 16-bit colour PNG, which pillow reads as 8 bit; save "
                    "a 16-bit TIFF, or one 16-bit grey PNG per channel"
                )
            from PIL import Image

            with Image.open(path) as im:
                array = np.asarray(im)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
        elif suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as npz:
                keys = list(npz.keys())
                key = "psf" if "psf" in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise ValueError(
                        f"PSF file {path} holds arrays {keys} but none named 'psf'; name the "
                        "PSF array 'psf' (np.savez(f, psf=..., pitch_um=...))"
                    )
                array = npz[key]
                if "pitch_um" in keys:
                    pitch_um = float(npz["pitch_um"])
                if "background" in keys:
                    background = np.asarray(npz["background"], dtype=np.float64).reshape(-1)
                if "axis_px" in keys:
                    row, col = np.asarray(npz["axis_px"], dtype=np.float64).reshape(2)
                    axis_px = (float(row), float(col))
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"cannot read PSF file {path} ({err}); is it a valid image?") from err
    except Exception as err:  # truncated / foreign files: PIL, tifffile and numpy errors
        raise ValueError(
            f"cannot read PSF file {path} ({type(err).__name__}: {err}); the file is truncated "
            "or not an image of its suffix's format"
        ) from err
    if array.dtype.kind not in "uif" or array.dtype == np.bool_:
        raise ValueError(
            f"PSF file {path} holds {array.dtype} values; save intensities (integers or floats)"
        )
    full_scale = float(np.iinfo(array.dtype).max) if array.dtype.kind in "ui" else None
    if array.ndim == 3 and array.shape[-1] <= 4 < array.shape[0]:  # (H, W, C) → (C, H, W)
        array = np.moveaxis(array, -1, 0)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(
            f"PSF file {path} has shape {array.shape}; expected (H, W), (H, W, C) or (C, H, W)"
        )
    if array.shape[0] == 4:  # RGBA: the alpha channel is not light
        array = array[:3]
    return PSFFile(array.astype(np.float64), full_scale, pitch_um, background, axis_px)


def border_background(image: np.ndarray, border_px: int | None = None) -> np.ndarray:
    """Per-channel median (C,) of the outer ``border_px`` ring of (C, H, W)."""
    h, w = image.shape[-2:]
    b = max(2, min(h, w) // 16) if border_px is None else int(border_px)
    if not 1 <= b < min(h, w) / 2:
        raise ValueError(
            f"psf_border_px={border_px} does not fit a {h}×{w} image; give "
            f"1..{math.ceil(min(h, w) / 2) - 1}"
        )
    ring = np.ones((h, w), dtype=bool)
    ring[b : h - b, b : w - b] = False
    return np.median(image[:, ring], axis=1)


def centroid_px(image: np.ndarray) -> tuple[float, float]:
    """Intensity centroid (row, column) of (C, H, W), all channels together."""
    total = image.sum(axis=0)
    mass = total.sum()
    rows, cols = np.arange(total.shape[0]), np.arange(total.shape[1])
    return float(total.sum(axis=1) @ rows / mass), float(total.sum(axis=0) @ cols / mass)


def offset_area_matrix(
    n_in: int, pitch_in_um: float, centre_in_px: float, n_out: int, pitch_out_um: float
) -> np.ndarray:
    """Exact area-overlap weights (n_out, n_in): input pixel i spans (i − centre ± ½)·pitch_in,
    output pixel k spans (k − n_out//2 ± ½)·pitch_out; entry = the share of input pixel i that
    falls in output pixel k, so energy inside the window is kept."""
    ci = (np.arange(n_in) - centre_in_px) * pitch_in_um
    co = (np.arange(n_out) - n_out // 2) * pitch_out_um
    lo = np.maximum(co[:, None] - pitch_out_um / 2, ci[None, :] - pitch_in_um / 2)
    hi = np.minimum(co[:, None] + pitch_out_um / 2, ci[None, :] + pitch_in_um / 2)
    return np.clip(hi - lo, 0.0, None) / pitch_in_um


def _read_all(paths: Sequence[str | Path]) -> PSFFile:
    """One file, or one single-channel file per wavelength stacked to (C, H, W)."""
    parts = [read_psf_file(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    for p, (image, *_) in zip(paths, parts, strict=True):
        if image.shape[0] != 1:
            raise ValueError(
                f"PSF file {p} has {image.shape[0]} channels; with one file per wavelength each "
                "file holds one channel (or pass a single RGB file)"
            )
        if image.shape != parts[0][0].shape:
            raise ValueError(
                f"PSF file {p} is {image.shape[-2]}×{image.shape[-1]} but {paths[0]} is "
                f"{parts[0][0].shape[-2]}×{parts[0][0].shape[-1]}; measure every wavelength "
                "on the same window"
            )
    scales = {part.full_scale for part in parts}
    pitches = {part.pitch_um for part in parts}
    backgrounds = [part.background for part in parts]
    return PSFFile(
        np.concatenate([part.image for part in parts]),
        max((s for s in scales if s is not None), default=None),
        next(iter(pitches)) if len(pitches) == 1 else None,
        None if any(b is None for b in backgrounds) else np.concatenate(backgrounds),
        parts[0].axis_px if len({part.axis_px for part in parts}) == 1 else None,
    )


def load_measured_psf(
    paths: str | Path | Sequence[str | Path],
    sensor_pitch_um: float,
    psf_size_px: int,
    channels: Sequence[int] = (1, 3),
    options: MeasurementOptions | None = None,
) -> np.ndarray:
    """Bench image(s) → PSF (C, K, K) float32 on the sensor pixels, each channel summing to 1,
    centre at K//2. ``channels``: the channel counts the camera takes (1, its wavelengths, RGB).
    Steps and errors: module docstring."""
    o = options or MeasurementOptions()
    files = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not files:
        raise ValueError("psf_file is empty: give the measured PSF image (or one per wavelength)")
    label = str(files[0]) if len(files) == 1 else f"{files[0]} (+{len(files) - 1} more)"
    raw, full_scale, stored_pitch, stored_background, stored_axis = _read_all(files)
    if raw.shape[0] not in channels:
        raise ValueError(
            f"PSF file {label} has {raw.shape[0]} channel(s) but the camera takes "
            f"{' or '.join(str(c) for c in sorted(set(channels)))} (one, one per wavelength, or "
            "RGB); fix the file or the camera's wavelengths_nm"
        )
    if not np.isfinite(raw).all():
        raise ValueError(f"PSF file {label} holds NaN or infinite values; re-export the image")
    level = o.saturation_level if o.saturation_level is not None else full_scale
    if level is not None and not o.allow_saturated:
        clipped = int((raw >= level).sum())
        if clipped:
            raise ValueError(
                f"PSF file {label}: {clipped} pixel(s) at the full scale {level:g}: a clipped "
                "peak is a wrong PSF; measure with a shorter exposure or a neutral-density "
                "filter (or set psf_allow_saturated=true to accept it)"
            )
    pitch_um = o.pitch_um if o.pitch_um is not None else stored_pitch
    if pitch_um is None:
        raise ValueError(
            f"PSF file {label}: its pixel pitch is unknown; give psf_pitch_um (the bench "
            "camera's pixel pitch in µm at the sensor plane)"
        )
    if not (math.isfinite(pitch_um) and pitch_um > 0):
        raise ValueError(f"psf_pitch_um={pitch_um!r} must be a positive number of µm")
    if pitch_um > o.max_upsampling * sensor_pitch_um:
        raise ValueError(
            f"PSF file {label}: its pitch {pitch_um:g} µm is {pitch_um / sensor_pitch_um:.2f}× "
            f"the sensor pitch {sensor_pitch_um:g} µm (more than {o.max_upsampling:g}× "
            "upsampling invents the PSF's detail); measure with a finer bench camera or "
            "magnification, or simulate a coarser sensor (sensor_pitch_um)"
        )
    image = raw - _background(raw, label, o, stored_background)
    if image.sum() <= 0:
        raise ValueError(
            f"PSF file {label} is all zero or negative after background subtraction (total "
            f"{image.sum():.3g}); check the exposure, the dark frame (psf_dark_file) or "
            "psf_border_px"
        )
    # the signed image: the background noise averages out of the centroid (clipping it would
    # pull the centroid towards the middle of a large bench frame)
    if stored_axis is not None:  # the file knows where the optical axis is
        row, col = stored_axis
    else:
        row, col = centroid_px(image) if o.centre else _centre_px(image)
    image, row, col = _crop(image, row, col, o.crop_px, label)
    a_rows = offset_area_matrix(image.shape[-2], pitch_um, row, psf_size_px, sensor_pitch_um)
    a_cols = offset_area_matrix(image.shape[-1], pitch_um, col, psf_size_px, sensor_pitch_um)
    psf = a_rows @ image @ a_cols.T  # signed: the background noise averages out
    kept = psf.sum(axis=(-2, -1)) / image.sum(axis=(-2, -1))
    if kept.min() < o.min_energy_in_window:
        window_um = psf_size_px * sensor_pitch_um
        raise ValueError(
            f"PSF file {label}: only {kept.min():.0%} of the PSF's light falls in the "
            f"{psf_size_px}×{psf_size_px}-pixel sensor window ({window_um:g} µm); the PSF is "
            "larger than the window: raise psf_size_px, or crop the measurement (psf_crop_px)"
        )
    psf = np.clip(psf, 0, None)
    return (psf / psf.sum(axis=(-2, -1), keepdims=True)).astype(np.float32)


def _background(
    raw: np.ndarray, label: str, o: MeasurementOptions, stored: np.ndarray | None
) -> np.ndarray:
    """(C, 1, 1) or (C, H, W) background to subtract: the dark frame, else the file's own
    level (unless ``border_px`` asks for the border), else the border median."""
    if o.dark_file is None:
        if stored is not None and o.border_px is None:
            if stored.size not in (1, raw.shape[0]):
                raise ValueError(
                    f"PSF file {label} stores {stored.size} background levels for "
                    f"{raw.shape[0]} channel(s); store one, or one per channel"
                )
            return np.broadcast_to(stored, (raw.shape[0],))[:, None, None]
        return border_background(raw, o.border_px)[:, None, None]
    dark = read_psf_file(o.dark_file).image
    if dark.shape[-2:] != raw.shape[-2:] or dark.shape[0] not in (1, raw.shape[0]):
        raise ValueError(
            f"dark frame {o.dark_file} is {dark.shape} but PSF file {label} is {raw.shape}; "
            "record the dark frame with the same camera settings and window"
        )
    if not np.isfinite(dark).all():
        raise ValueError(f"dark frame {o.dark_file} holds NaN or infinite values")
    return dark


def _centre_px(image: np.ndarray) -> tuple[float, float]:
    """Geometric centre (row, column) at the FFT convention, H//2 and W//2."""
    return float(image.shape[-2] // 2), float(image.shape[-1] // 2)


def _crop(
    image: np.ndarray, row: float, col: float, crop_px: int | None, label: str
) -> tuple[np.ndarray, float, float]:
    """Square of ``crop_px`` measured pixels around (row, col); the centre in the crop."""
    if crop_px is None:
        return image, row, col
    h, w = image.shape[-2:]
    if not 1 <= int(crop_px) <= min(h, w):
        raise ValueError(
            f"psf_crop_px={crop_px} does not fit PSF file {label} ({h}×{w}); give 1..{min(h, w)}"
        )
    half = int(crop_px) // 2
    r0 = min(max(round(row) - half, 0), h - int(crop_px))
    c0 = min(max(round(col) - half, 0), w - int(crop_px))
    cropped = image[:, r0 : r0 + int(crop_px), c0 : c0 + int(crop_px)]
    return cropped, row - r0, col - c0

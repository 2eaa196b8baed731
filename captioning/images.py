"""Image decoding of the caption pipeline: one decoder and one resize for training, evaluation
and the attacks (8-bit RGB; high-bit-depth grey scaled, not clipped)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["IMAGE_SUFFIXES", "CorruptImageError", "load_image", "to_rgb8"]

logger = logging.getLogger("captioning.data")  # one logger for the data pipeline

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class CorruptImageError(OSError):
    """An image file cannot be decoded (message names the file)."""


def load_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """Decode an image file to uint8 ``(H, W, 3)`` RGB, optionally resized to ``size x size``.

    Raises:
        FileNotFoundError: the file does not exist (message names it).
        CorruptImageError: the file cannot be decoded (message names it).
    """
    path = Path(path)
    if path.is_dir():
        raise CorruptImageError(f"image {path} is a directory, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} not found")
    try:
        with Image.open(path) as im:
            im = to_rgb8(im, path.name)
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
            return np.asarray(im, dtype=np.uint8).copy()
    except Image.DecompressionBombError as err:
        raise CorruptImageError(
            f"image {path.name} ({path}) is too large to decode safely ({err}); skip it or "
            "raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file"
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptImageError(f"cannot decode image {path.name} ({path}): {err}") from err


def to_rgb8(im: Image.Image, name: str = "image") -> Image.Image:
    """An 8-bit RGB copy of a PIL image; 16-bit and 32-bit grey levels are *scaled* to 0..255.

    ``Image.convert("RGB")`` clips high-bit-depth grey images (a 16-bit PNG becomes almost all
    255); here 16-bit values are divided by 257 (65535 -> 255) and float images in [0, 1] are
    multiplied by 255. The dropped precision is logged.
    """
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        if mode == "F" and arr.size and np.nanmax(arr) <= 1.0:
            scale, bits = 255.0, "floating-point"
        elif mode.startswith("I;16") or (arr.size and arr.max() > 255):
            scale, bits = 255.0 / 65535.0, "16-bit"
            if arr.size and arr.max() > 65535:
                scale, bits = 255.0 / float(arr.max()), "32-bit"
        else:
            scale, bits = 1.0, "8-bit range"
        if scale != 1.0:
            logger.info("%s: %s grey levels scaled to 8 bits (precision dropped)", name, bits)
        grey = np.clip(np.nan_to_num(arr * scale) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return im.convert("RGB")

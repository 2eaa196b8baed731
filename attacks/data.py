"""Attack data in one import: scene images (``attacks.scenes``) and simulated (capture,
original) pairs (``attacks.pairs``); the command line and external code import them from here."""

from __future__ import annotations

from .pairs import (
    PairSet,
    capture_images,
    load_pairs,
    simulate_pairs,
    to_tensor,
    to_uint8,
    write_pairs,
)
from .scenes import IMAGE_SUFFIXES, ImageSet, load_image_set, make_embedded_set

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageSet",
    "PairSet",
    "capture_images",
    "load_image_set",
    "load_pairs",
    "make_embedded_set",
    "simulate_pairs",
    "to_tensor",
    "to_uint8",
    "write_pairs",
]

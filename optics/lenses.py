"""The lens registry: which lens model a camera preset uses, and the interface every lens keeps.

A lens is an ``nn.Module`` whose ``forward(height_noise=None)`` returns the PSF (Λ, K, K) on the
sensor pixels (each channel summing to 1, centre at K//2) and which says ``psf_size_px``,
``wavelengths_nm``, ``sensor_pitch_um`` and ``has_surface``. A lens with a surface (a height
map that can alias on the pupil grid and be fabricated) also has ``height_map_um``,
``coefficients_um``, ``phase_step_excess`` and ``check_phase_sampling``; code outside
``optics`` asks ``has_surface`` before it uses them.

A new parametrisation (a pixelated phase mask, ...) is one module with its lens class and one
entry here: the camera builds it for its presets, and the preset list follows.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from .camera import CameraConfig

__all__ = ["LENSES", "Lens", "LensKind", "build_lens", "lens_for_preset", "lens_presets"]


class Lens(Protocol):
    """What the camera and the layers above may use of any lens."""

    psf_size_px: int
    wavelengths_nm: tuple[float, ...]
    sensor_pitch_um: float
    has_surface: bool

    def __call__(self, height_noise: bool | None = None) -> torch.Tensor: ...


@dataclass(frozen=True)
class LensKind:
    """One lens model: the presets that use it and ``module:function`` building it from a
    CameraConfig (imported when used, so a registry entry costs nothing until then)."""

    name: str
    presets: tuple[str, ...]
    builder: str
    description: str

    def build(self, config: CameraConfig) -> nn.Module:
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)(config)


LENSES: Mapping[str, LensKind] = {
    kind.name: kind
    for kind in (
        LensKind(
            "zernike",
            ("privacy", "defocus"),
            "optics.lens:lens_from_camera_config",
            "refractive lens with a learned Zernike surface (privacy: Z4 on, defocus: Z4 only)",
        ),
        LensKind(
            "measured",
            ("measured",),
            "optics.measured_lens:lens_from_camera_config",
            "a fixed PSF measured on a bench (psf_file), nothing trainable",
        ),
    )
}


def lens_presets() -> tuple[str, ...]:
    """Every camera preset that has a lens, in registry order."""
    return tuple(p for kind in LENSES.values() for p in kind.presets)


def lens_for_preset(preset: str) -> LensKind | None:
    """The lens model of a preset, or None for presets without a lens (ideal, lowres)."""
    return next((kind for kind in LENSES.values() if preset in kind.presets), None)


def build_lens(config: CameraConfig) -> nn.Module | None:
    """The camera's lens (None for presets without one)."""
    kind = lens_for_preset(config.preset)
    return None if kind is None else kind.build(config)


def has_surface(lens: Any) -> bool:
    """Whether ``lens`` has a fabricable surface (height map, phase sampling)."""
    return bool(getattr(lens, "has_surface", False))

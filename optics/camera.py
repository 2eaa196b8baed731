"""Camera = optional Zernike lens (PSF) + linear convolution + sensor, built from a plain config.

Presets (the paper's comparison):
* ``privacy``: all Zernike terms from Z4 learned (piston/tip/tilt frozen);
* ``defocus``: only Z4 learned;
* ``lowres``: no lens blur, a lowres_size² sensor (16×16), upsampled back for the CNN;
* ``ideal``: no optics at all — the non-private upper bound;
* ``measured``: a fixed PSF measured on a bench (``psf_file``; ``optics/measured_psf.py``).

Which lens model a preset uses is ``optics.lenses.LENSES``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import torch
from torch import nn

from . import functional as fn
from .checkpoint_file import (
    checkpoint_kind,
    describe_checkpoint_kind,
    read_checkpoint,
    register_format,
)
from .lens_config import LensConfig
from .lenses import build_lens, lens_for_preset, lens_presets
from .sensor import Sensor

__all__ = [
    "LENS_OPTIONS",
    "PRESETS",
    "Camera",
    "CameraConfig",
    "camera_from_checkpoint",
    "lens_config_from_dict",
    "load_camera",
    "save_camera",
]

PRESETS = (*lens_presets(), "lowres", "ideal")


#: The lens options: every field of :class:`~optics.lens_config.LensConfig`, held by
#: ``CameraConfig.lens`` (options ``model.camera.lens.<name>``).
LENS_OPTIONS = tuple(f.name for f in dataclasses.fields(LensConfig))


@dataclass
class CameraConfig:
    """Everything that defines a simulated camera; defaults are the published privacy-lens ones.

    ``lens`` holds the lens and propagation settings (a :class:`LensConfig`, validated with
    its sampling limits); the ``psf_*`` options are the measured lens's, the rest the sensor's.
    Units are in the names. ``lens.trainable_indices`` null means "as the preset says".
    """

    preset: Literal["privacy", "defocus", "measured", "lowres", "ideal"] = "privacy"
    lens: LensConfig = field(default_factory=LensConfig)
    # measured PSF (preset measured; optics/measured_psf.py): the bench image(s), their pixel
    # pitch, background, centring, crop, saturation and the largest upsampling allowed
    psf_file: str | list[str] | None = None
    psf_pitch_um: float | None = None
    psf_dark_file: str | None = None
    psf_border_px: int | None = None
    psf_centre: bool = True
    psf_crop_px: int | None = None
    psf_allow_saturated: bool = False
    psf_saturation_level: float | None = None
    psf_max_upsampling: float = 2.0
    # sensor
    response: Literal["srgb", "gamma", "linear"] = "srgb"
    gamma: float = 2.2
    linearize_input: bool = True
    read_noise_std: float = 0.01
    shot_noise_gain: float = 0.0
    quantize_bits: int | None = 8
    lowres_size: int = 16
    upsample_mode: Literal["bilinear", "bicubic", "nearest"] = "bilinear"

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown camera preset {self.preset!r}: choose one of {PRESETS}")
        if isinstance(self.lens, Mapping):
            self.lens = lens_config_from_dict(self.lens)
        elif not isinstance(self.lens, LensConfig):
            raise ValueError(
                f"camera option lens={self.lens!r} must be a mapping of lens options "
                f"({', '.join(LENS_OPTIONS)})"
            )
        _check_numbers(self, dataclasses.fields(self), "")
        _check_numbers(self.lens, dataclasses.fields(LensConfig), "lens.")
        if self.preset == "measured" and not self.psf_file:
            raise ValueError(
                "camera preset 'measured' needs psf_file, the PSF measured on a bench "
                "(--model.camera.psf_file F --model.camera.psf_pitch_um P)"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CameraConfig:
        """Build from a plain dict (YAML, a checkpoint's hyper-parameters), rejecting unknown
        keys by name. Lens options go under ``lens`` (a dict or a LensConfig) or as
        ``lens.<name>`` keys; a flat ``<name>`` key (checkpoints and lens.json files written
        before the lens options moved under ``lens``; ``Camera(preset, pupil_grid=...)``)
        overrides the same option under ``lens``."""
        values = dict(values)
        lens = values.pop("lens", None) or {}
        lens = lens.to_dict() if isinstance(lens, LensConfig) else dict(lens)
        for key in list(values):
            name = key[len("lens.") :] if key.startswith("lens.") else key
            if name in LENS_OPTIONS:
                lens[name] = values.pop(key)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            valid = sorted(known - {"lens"}) + [f"lens.{n}" for n in LENS_OPTIONS]
            raise ValueError(f"unknown camera option(s) {unknown}; valid options: {valid}")
        return cls(**values, lens=lens_config_from_dict(lens))

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples): YAML hyper-parameter files read it back."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["lens"] = self.lens.to_dict()
        return copy.deepcopy(out)

    @property
    def has_lens(self) -> bool:
        return lens_for_preset(self.preset) is not None


def lens_config_from_dict(values: Mapping[str, Any]) -> LensConfig:
    """A LensConfig from camera options (numbers written as strings converted, each checked
    with an error naming ``lens.<option>``); unknown names are refused with the valid ones."""
    unknown = sorted(set(values) - set(LENS_OPTIONS))
    if unknown:
        raise ValueError(f"unknown lens option(s) {unknown}; valid options: {list(LENS_OPTIONS)}")
    holder = SimpleNamespace(**values)
    _check_numbers(holder, [f for f in dataclasses.fields(LensConfig) if f.name in values], "lens.")
    try:
        return LensConfig(**vars(holder))
    except ValueError as err:
        raise ValueError(f"camera option lens.{err}" if _names_option(err) else str(err)) from None


def _names_option(err: ValueError) -> bool:
    """Whether a LensConfig error starts with the option's name (then prefixed ``lens.``)."""
    head = str(err).split(" ", 1)[0].split("=", 1)[0]
    return head in LENS_OPTIONS


_INT_FIELDS = (
    "pupil_grid",
    "num_zernike",
    "init_seed",
    "psf_size_px",
    "lowres_size",
    "psf_border_px",
    "psf_crop_px",
    "quantize_bits",
)
_POSITIVE = (
    "pupil_grid",
    "pupil_pitch_um",
    "pad_factor",
    "sensor_distance_mm",
    "design_wavelength_nm",
    "num_zernike",
    "psf_size_px",
    "gamma",
    "lowres_size",
    "focal_length_mm",
    "object_distance_mm",
    "sensor_pitch_um",
    "psf_pitch_um",
    "psf_border_px",
    "psf_crop_px",
    "psf_saturation_level",
    "psf_max_upsampling",
)
_NON_NEGATIVE = ("fabrication_tolerance_um", "init_std_um", "read_noise_std", "shot_noise_gain")
_LISTS = ("wavelengths_nm", "trainable_indices")


def _number(name: str, value: Any, integer: bool = False) -> float:
    fix = f"set camera option {name} to a finite {'integer' if integer else 'number'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:  # numbers written as strings (YAML "1e-3", KEY=VALUE options)
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"camera option {name}={value!r} is not a number; {fix}") from None
    if not math.isfinite(value):
        raise ValueError(f"camera option {name}={value!r} is not finite; {fix}")
    if integer and value != int(value):
        raise ValueError(f"camera option {name}={value!r} is not an integer; {fix}")
    return float(value)


def _check_numbers(config: Any, fields: Iterable[dataclasses.Field], prefix: str) -> None:
    """Every number of a config is finite (NaN/inf would train to NaN losses silently), the
    integers are integers and the sizes are positive; errors name the option (``prefix`` +
    name). Numbers given as strings are stored as numbers where ``config`` is mutable."""
    for f in fields:
        value, name = getattr(config, f.name), prefix + f.name
        kind = str(f.type)
        if f.name == "lens" or value is None or any(t in kind for t in ("str", "Literal", "bool")):
            continue
        if f.name in _LISTS:
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise ValueError(f"camera option {name}={value!r} must be a non-empty list")
            values = list(value)
            if not values and f.name == "wavelengths_nm":
                raise ValueError(f"camera option {name}={value!r} must be a non-empty list")
            for i, v in enumerate(values):
                if _number(f"{name}[{i}]", v, integer=f.name == "trainable_indices") <= 0:
                    raise ValueError(f"camera option {name}[{i}]={v!r} must be > 0")
            continue
        if f.name == "initial_coefficients_um":
            items = value.items() if isinstance(value, Mapping) else None
            if items is None and (isinstance(value, str) or not isinstance(value, Iterable)):
                raise ValueError(f"camera option {name}={value!r} must map Noll index -> µm")
            for j, c in items if items is not None else enumerate(value, start=1):
                _number(f"{name}[{j}]", j, integer=True)
                _number(f"{name}[{j}]", c)
            continue
        integer = f.name in _INT_FIELDS
        x = _number(name, value, integer=integer)
        if f.name in _POSITIVE and x <= 0:
            raise ValueError(f"camera option {name}={value!r} must be > 0")
        if f.name in _NON_NEGATIVE and x < 0:
            raise ValueError(f"camera option {name}={value!r} must be >= 0")
        if isinstance(value, str) and not isinstance(config, LensConfig):  # "64" from KEY=VALUE
            setattr(config, f.name, int(x) if integer else x)


class Camera(nn.Module):
    """Scene (B, C, H, W) in [0, 1] → captured image (B, C, H, W) in [0, 1].

    ``Camera("privacy")``, ``Camera(CameraConfig(...))``, ``Camera({"preset": "defocus"})`` or
    ``Camera("privacy", pupil_grid=256)`` (keyword overrides).
    """

    def __init__(
        self, config: CameraConfig | Mapping[str, Any] | str = "privacy", **overrides: Any
    ):
        super().__init__()
        if isinstance(config, str):  # the overrides with it: a preset may need some (measured)
            config, overrides = CameraConfig.from_dict({"preset": config, **overrides}), {}
        elif isinstance(config, Mapping):
            config = CameraConfig.from_dict(config)
        elif not isinstance(config, CameraConfig):
            raise TypeError(
                f"config must be a CameraConfig, dict or preset name, got {type(config)}"
            )
        if overrides:
            config = CameraConfig.from_dict({**config.to_dict(), **overrides})
        self.config = config
        self.lens = build_lens(config)  # optics.lenses: the preset's lens model, or None
        self.sensor = Sensor(
            response=config.response,
            gamma=config.gamma,
            read_noise_std=config.read_noise_std,
            shot_noise_gain=config.shot_noise_gain,
            quantize_bits=config.quantize_bits,
            lowres_size=config.lowres_size if config.preset == "lowres" else None,
            upsample_mode=config.upsample_mode,
        )

    def psf(self, height_noise: bool | None = None) -> torch.Tensor | None:
        """PSF (Λ, K, K) or None for cameras without a lens."""
        return None if self.lens is None else self.lens(height_noise)

    def capture(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Simulate a capture; returns (captured (B, C, H, W), psf (Λ, K, K) or None)."""
        _check_images(images)
        x = self.sensor.decode(images) if self.config.linearize_input else images
        psf = self.psf()
        if psf is not None:
            if psf.shape[0] not in (1, images.shape[1]):
                raise ValueError(
                    f"camera has {psf.shape[0]} wavelengths but the images have "
                    f"{images.shape[1]} channels; use 1 wavelength or one per channel"
                )
            x = fn.linear_convolve(x, psf)
        return self.sensor(x, generator), psf

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.capture(images, generator)[0]


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
        raise ValueError(f"images must be a (B, C, H, W) tensor in [0, 1], got {shape}")
    if not images.is_floating_point():
        raise ValueError(
            f"images must be floating point in [0, 1], got dtype {images.dtype}; "
            "divide uint8 images by 255"
        )


def load_camera(path: str | Path, map_location: str = "cpu") -> Camera:
    """Rebuild a trained camera from a checkpoint.

    Accepts a Lightning checkpoint of the end-to-end trainer (``hyper_parameters["camera"]``
    holds the CameraConfig dict, ``state_dict`` the weights under ``camera.``) or a plain
    ``{"camera_config": ..., "camera_state": ...}`` file saved by :func:`save_camera`.
    """
    return camera_from_checkpoint(read_checkpoint(path, map_location), path)


def camera_from_checkpoint(ckpt: Mapping[str, Any], path: str | Path) -> Camera:
    """:func:`load_camera` of a checkpoint already read with :func:`read_checkpoint` (a
    caller that needs more of a large file reads it once); ``path`` names it in errors."""
    path = Path(path)
    kind = checkpoint_kind(ckpt)
    if kind not in ("training", "camera", "unknown"):
        raise ValueError(
            f"{path} is {describe_checkpoint_kind(kind)}, not a camera; pass the camera's "
            "training checkpoint (runs/…/checkpoints/best.ckpt) or a file written by "
            "optics.save_camera"
        )
    if "camera_config" in ckpt:
        config, state = ckpt["camera_config"], ckpt.get("camera_state", {})
    else:
        hparams = ckpt.get("hyper_parameters", {}) or {}
        config = hparams.get("camera")
        state = {
            k[len("camera.") :]: v
            for k, v in ckpt.get("state_dict", {}).items()
            if k.startswith("camera.")
        }
    if config is None:
        raise ValueError(
            f"{path} holds no camera: expected hyper_parameters['camera'] (a privcam training "
            "checkpoint) or 'camera_config' (saved by optics.camera.save_camera)"
        )
    if isinstance(config, CameraConfig):
        config = config.to_dict()
    camera = Camera(dict(config))
    missing, unexpected = camera.load_state_dict(state, strict=False)
    if unexpected or (camera.lens is not None and missing):
        raise ValueError(
            f"camera weights in {path} do not match its config: missing {missing}, "
            f"unexpected {unexpected}"
        )
    return camera


register_format(
    "camera", "a camera file (optics.save_camera)", lambda ckpt: "camera_config" in ckpt
)


def save_camera(camera: Camera, path: str | Path) -> None:
    """Save a camera's config and weights in the plain format :func:`load_camera` reads."""
    torch.save(
        {"camera_config": camera.config.to_dict(), "camera_state": camera.state_dict()}, path
    )

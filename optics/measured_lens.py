"""A lens known only by its PSF measured on a bench (camera preset ``measured``).

The PSF is read once (``optics.measured_psf``: background, centring, resampling to the sensor
pitch, normalisation) and kept as a buffer, so checkpoints carry the PSF itself: a run reloads
without the original file, and a checkpoint's PSF wins over the file (the lens evaluated is
the one trained with). Nothing here is trainable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .measured_psf import MeasurementOptions, load_measured_psf

__all__ = ["MeasuredPSFLens", "lens_from_camera_config", "measurement_options"]


def measurement_options(config: Any) -> MeasurementOptions:
    """The ``psf_*`` options of a CameraConfig."""
    return MeasurementOptions(
        pitch_um=config.psf_pitch_um,
        dark_file=config.psf_dark_file,
        border_px=config.psf_border_px,
        centre=bool(config.psf_centre),
        crop_px=config.psf_crop_px,
        allow_saturated=bool(config.psf_allow_saturated),
        saturation_level=config.psf_saturation_level,
        max_upsampling=float(config.psf_max_upsampling),
    )


def sensor_pitch_um(config: Any) -> float:
    """The camera's sensor pitch: ``sensor_pitch_um``, else the design lens's rule (the
    aperture width pupil_grid × pupil_pitch_um over psf_size_px pixels), so a design's camera
    options with ``preset: measured`` give its sensor."""
    return config.lens.sensor_pitch_resolved_um


class MeasuredPSFLens(nn.Module):
    """Fixed PSF (C, K, K), C = 1, the camera's wavelengths or 3 (RGB); ``forward()`` returns it.

    ``psf``: the PSF itself (e.g. from a checkpoint); else ``psf_file`` is read. A missing
    file is allowed at construction only so that a checkpoint can supply the PSF
    (``load_state_dict``); using the lens before that is the file's error."""

    has_surface = False  # a PSF only: no height map to fabricate, no pupil to alias

    def __init__(
        self,
        psf_file: str | list[str] | None,
        sensor_pitch_um: float,
        psf_size_px: int,
        wavelengths_nm: tuple[float, ...],
        options: MeasurementOptions | None = None,
        psf: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.psf_file = psf_file
        self.sensor_pitch_um = float(sensor_pitch_um)
        self.psf_size_px = int(psf_size_px)
        self.wavelengths_nm = tuple(float(w) for w in wavelengths_nm)
        self.options = options or MeasurementOptions()
        if psf is None and psf_file is not None and _all_exist(psf_file):
            channels = (1, len(self.wavelengths_nm), 3)
            psf = torch.from_numpy(
                load_measured_psf(
                    psf_file, self.sensor_pitch_um, self.psf_size_px, channels, self.options
                )
            )
        self.register_buffer("psf", torch.zeros(0, 0, 0) if psf is None else psf.float())
        self._register_load_state_dict_pre_hook(self._take_saved_shape)

    def _take_saved_shape(self, state: dict[str, Any], prefix: str, *_: Any) -> None:
        # a checkpoint's PSF replaces whatever was read (or not) at construction
        saved = state.get(prefix + "psf")
        if isinstance(saved, torch.Tensor) and saved.shape != self.psf.shape:
            self.psf = torch.empty_like(saved, device=self.psf.device, dtype=self.psf.dtype)

    def forward(self, height_noise: bool | None = None) -> torch.Tensor:
        """PSF (C, K, K); ``height_noise`` is ignored (the measured lens is as made)."""
        if self.psf.numel() == 0:
            files = [self.psf_file] if isinstance(self.psf_file, str) else self.psf_file
            missing = next((f for f in files or [] if not Path(f).is_file()), None)
            raise FileNotFoundError(
                f"measured camera: PSF file {missing} does not exist (and no checkpoint "
                "supplied the PSF); pass the measured PSF with --model.camera.psf_file"
                if missing
                else "measured camera has no PSF: set psf_file (the bench measurement)"
            )
        return self.psf


def _all_exist(files: str | list[str]) -> bool:
    return all(Path(f).is_file() for f in ([files] if isinstance(files, str) else files))


def lens_from_camera_config(config: Any) -> MeasuredPSFLens:
    """The measured lens of a ``CameraConfig`` (registry entry ``measured``)."""
    return MeasuredPSFLens(
        config.psf_file,
        sensor_pitch_um(config),
        config.lens.psf_size_px,
        tuple(config.lens.wavelengths_nm),
        measurement_options(config),
    )

"""Sensor: camera response, noise, quantisation and (for the low-res baseline) pixel binning."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import functional as fn

__all__ = ["RESPONSES", "Sensor"]

RESPONSES = ("srgb", "gamma", "linear")


class Sensor(nn.Module):
    """X̂ = Q(S(Y) + N): response S, read / Poisson–Gaussian noise N, optional quantisation Q.

    ``encode``/``decode`` expose S and S⁻¹ so scenes given as display-referred images can be
    linearised before the optics (and attackers can undo the response).
    """

    def __init__(
        self,
        response: str = "srgb",
        gamma: float = 2.2,
        read_noise_std: float = 0.01,
        shot_noise_gain: float = 0.0,
        quantize_bits: int | None = 8,
        lowres_size: int | None = None,
        upsample_mode: str = "bilinear",
    ) -> None:
        super().__init__()
        if response not in RESPONSES:
            raise ValueError(f"response must be one of {RESPONSES}, got {response!r}")
        if gamma <= 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        if read_noise_std < 0 or shot_noise_gain < 0:
            raise ValueError(
                f"noise levels must be >= 0, got read_noise_std={read_noise_std}, "
                f"shot_noise_gain={shot_noise_gain}"
            )
        if quantize_bits is not None and not 1 <= int(quantize_bits) <= 16:
            raise ValueError(f"quantize_bits must be in 1..16 or null, got {quantize_bits}")
        if lowres_size is not None and int(lowres_size) < 1:
            raise ValueError(f"lowres_size must be a positive pixel count, got {lowres_size}")
        if upsample_mode not in ("bilinear", "bicubic", "nearest"):
            raise ValueError(
                f"upsample_mode must be 'bilinear', 'bicubic' or 'nearest', got {upsample_mode!r}"
            )
        self.response = response
        self.gamma = float(gamma)
        self.read_noise_std = float(read_noise_std)
        self.shot_noise_gain = float(shot_noise_gain)
        self.quantize_bits = None if quantize_bits is None else int(quantize_bits)
        self.lowres_size = None if lowres_size is None else int(lowres_size)
        self.upsample_mode = upsample_mode

    def encode(self, linear: torch.Tensor) -> torch.Tensor:
        """Camera response S: linear irradiance in [0, 1] → encoded values in [0, 1]."""
        if self.response == "srgb":
            return fn.srgb_encode(linear)
        if self.response == "gamma":
            return fn.gamma_encode(linear, self.gamma)
        return linear.clamp(0.0, 1.0)

    def decode(self, encoded: torch.Tensor) -> torch.Tensor:
        """S⁻¹: encoded values → linear irradiance."""
        if self.response == "srgb":
            return fn.srgb_decode(encoded)
        if self.response == "gamma":
            return fn.gamma_decode(encoded, self.gamma)
        return encoded.clamp(0.0, 1.0)

    def forward(
        self, irradiance: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, C, H, W) linear irradiance on the sensor → captured image in [0, 1], same shape
        (low-res sensors bin to lowres_size² and resample back to H×W for the CNN)."""
        x = irradiance
        if self.lowres_size is not None:
            # Pixel binning (exact area average when H, W are multiples of lowres_size).
            x = F.adaptive_avg_pool2d(x, self.lowres_size)
        x = fn.sensor_noise(self.encode(x), self.read_noise_std, self.shot_noise_gain, generator)
        if self.quantize_bits is not None:
            x = fn.quantize_ste(x, self.quantize_bits)
        else:
            x = x.clamp(0.0, 1.0)
        if self.lowres_size is not None:
            align = None if self.upsample_mode == "nearest" else False
            x = F.interpolate(
                x, size=irradiance.shape[-2:], mode=self.upsample_mode, align_corners=align
            )
            x = x.clamp(0.0, 1.0)
        return x

"""Optics losses of the privacy lens (docs/design.md, "Physics conventions")."""

from __future__ import annotations

import torch

__all__ = ["disk_mask", "distortion_loss", "psf_mask_loss"]


def distortion_loss(captured: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L_p = 1 − mean((X̂ − X)²) on [0, 1] images; minimising it maximises the distortion."""
    if captured.shape != original.shape:
        raise ValueError(
            f"captured {tuple(captured.shape)} and original {tuple(original.shape)} differ in shape"
        )
    return 1.0 - (captured - original).square().mean()


def disk_mask(size: int, radius_px: float, device: torch.device | None = None) -> torch.Tensor:
    """Centred disk M (size, size): 1 within radius_px of pixel size//2, else 0."""
    if radius_px <= 0:
        raise ValueError(f"PSF mask radius must be positive, got {radius_px}")
    c = torch.arange(size, device=device, dtype=torch.float32) - size // 2
    return ((c[:, None] ** 2 + c[None, :] ** 2) <= radius_px**2).float()


def psf_mask_loss(psf: torch.Tensor, radius_px: float) -> torch.Tensor:
    """L_H = ‖H ⊙ (1 − M)‖_F over all wavelengths; keeps the PSF's energy on the sensor.

    Args:
        psf: (Λ, K, K).
        radius_px: radius of M in PSF pixels (published: 32 for a 256-pixel PSF).
    """
    outside = 1.0 - disk_mask(psf.shape[-1], radius_px, psf.device).to(psf.dtype)
    return torch.linalg.vector_norm(psf * outside)

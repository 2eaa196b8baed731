"""Optics losses of the privacy lens (docs/design.md, "Physics conventions")."""

from __future__ import annotations

import torch

__all__ = ["band_mtf_loss", "disk_mask", "distortion_loss", "psf_mask_loss"]

# the radial frequencies the band may span: DC to the corner of the FFT grid (√2 · Nyquist)
MAX_BAND_CPP = 0.5 * 2**0.5


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


def band_mtf_loss(psf: torch.Tensor, band_cpp: tuple[float, float]) -> torch.Tensor:
    """Mean MTF of the PSF over a band of radial frequencies (not in the published loss).

    The captioner needs only the lowest frequencies to name shapes, while an attacker who
    inverts the blur needs every frequency the lens still passes above the sensor noise;
    minimising this term digs the lens's transfer function down over the band the attacker
    would invert, and leaves the band below it to the caption loss.

    Args:
        psf: (Λ, K, K), pixel pitch = the image's (the PSF the capture is convolved with).
        band_cpp: (low, high) radial frequencies in cycles per pixel, low <= f < high,
            0 <= low < high <= √2/2 (the FFT grid's corner).

    Returns:
        scalar: |OTF(f)| / |OTF(0)| averaged over the band's K×K grid frequencies and Λ
        (1 for a delta PSF, 0 for a PSF that passes nothing in the band).
    """
    low, high = band_cpp
    if not 0 <= low < high <= MAX_BAND_CPP:
        raise ValueError(
            f"band ({low:g}, {high:g}) cycles/px: need 0 <= low < high <= {MAX_BAND_CPP:.3f}"
        )
    k = psf.shape[-1]
    f = torch.fft.fftfreq(k, device=psf.device, dtype=torch.float64)
    fr = torch.hypot(f[:, None], f[None, :])
    band = (fr >= low) & (fr < high)
    if not band.any():
        raise ValueError(
            f"band ({low:g}, {high:g}) cycles/px holds no frequency of a {k}-px PSF's grid "
            f"(spacing 1/{k}): widen it"
        )
    otf = torch.fft.fft2(psf.float())
    # |z| with a floor: torch's complex abs has no gradient at 0, where a deep minimum sits
    mtf = (otf.real.square() + otf.imag.square() + 1e-12).sqrt()
    mtf = mtf / mtf[..., :1, :1].clamp_min(1e-12)
    return mtf[..., band].mean()

"""PSF checks and transfer functions on an FFT grid: the conventions every deconvolution shares.

Images are (B, C, H, W); a PSF is (C, K, K) or (1, K, K), non-negative, its centre at index
K//2 (as in ``optics.functional.linear_convolve``). ``psf_to_otf`` zero-pads the PSF to the FFT
grid and rolls its centre to index 0 (the ``ifftshift`` convention, the same as
``skimage.restoration.uft.ir2tf``), so deconvolution introduces no shift.
"""

from __future__ import annotations

import math

import torch

__all__ = ["check_psf", "laplacian_otf", "psf_to_otf"]


def check_psf(psf: torch.Tensor, image_shape: tuple[int, ...]) -> None:
    """Raise a ValueError naming the problem when ``psf`` cannot deconvolve ``image_shape``.

    Args:
        psf: (C, K, K) or (1, K, K) (also accepted: (K, K)).
        image_shape: (B, C, H, W) of the images it will be applied to.
    """
    if not isinstance(psf, torch.Tensor):
        raise TypeError(f"psf must be a torch.Tensor (C, K, K), got {type(psf).__name__}")
    if len(image_shape) != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(image_shape)}")
    if psf.dim() == 2:
        psf = psf[None]
    if psf.dim() != 3 or psf.shape[0] not in (1, image_shape[1]):
        raise ValueError(
            f"psf must be (C, K, K) with C = 1 or {image_shape[1]} (image channels), "
            f"got shape {tuple(psf.shape)}"
        )
    kh, kw = psf.shape[-2:]
    h, w = image_shape[-2:]
    if kh > h or kw > w:
        raise ValueError(
            f"PSF of {kh}×{kw} px is larger than the {h}×{w} px images: the capture does not "
            "contain the blur's support. Fix: use images at least as large as the PSF "
            f"(--image-size >= {max(kh, kw)}), or build the camera with psf_size_px <= {min(h, w)}"
        )
    if not torch.isfinite(psf).all():
        raise ValueError("psf contains NaN or inf values")


def psf_to_otf(psf: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Optical transfer function of a centred PSF on an FFT grid (real-input half spectrum).

    Args:
        psf: (..., K, K) real, centre at index K//2 (any K <= shape).
        shape: (Hf, Wf) FFT grid.

    Returns:
        complex (..., Hf, Wf//2 + 1): ``rfft2`` of the PSF zero-padded to ``shape`` and rolled so
        its centre sits at index (0, 0) (equals skimage's ``uft.ir2tf(psf, shape)``).
    """
    kh, kw = psf.shape[-2:]
    if kh > shape[0] or kw > shape[1]:
        raise ValueError(f"PSF {kh}×{kw} does not fit the FFT grid {shape}; pad the images more")
    padded = psf.new_zeros((*psf.shape[:-2], *shape))
    padded[..., :kh, :kw] = psf
    padded = torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
    return torch.fft.rfft2(padded)


def laplacian_otf(
    shape: tuple[int, int], dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """Transfer function of the discrete Laplacian [[0,−1,0],[−1,4,−1],[0,−1,0]] (centred).

    Returns:
        real (Hf, Wf//2 + 1), the same values as ``skimage.restoration.uft.laplacian(2, shape)``:
        4 − 2cos(2πu/Hf) − 2cos(2πv/Wf) (zero at DC, 8 at Nyquist).
    """
    fy = torch.fft.fftfreq(shape[0], dtype=torch.float64, device=device)
    fx = torch.fft.rfftfreq(shape[1], dtype=torch.float64, device=device)
    lap = 4 - 2 * torch.cos(2 * math.pi * fy)[:, None] - 2 * torch.cos(2 * math.pi * fx)[None, :]
    return lap.to(dtype)

"""Deconvolution maths for the non-blind attacks: tensors in, tensors out.

The Wiener filter (one K, a sweep over K, constant or Laplacian regulariser) on a circular,
reflected or reflected + edge-tapered grid, and regularised least squares with the camera's
exact linear forward model (conjugate gradients). The PSF and FFT-grid conventions are
``attacks.otf``'s, the boundary extension ``attacks.boundary``'s; both are re-exported here, so
``attacks.functional`` stays the one import of the Wiener maths.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import scipy.fft
import torch

from .boundary import edge_taper, pad_for_deconvolution, reflect_pad
from .otf import check_psf, laplacian_otf, psf_to_otf

__all__ = [
    "BOUNDARIES",
    "REGULARISERS",
    "check_psf",
    "edge_taper",
    "laplacian_otf",
    "linear_model_deconvolve",
    "log_k_grid",
    "pad_for_deconvolution",
    "psf_to_otf",
    "reflect_pad",
    "wiener_deconvolve",
    "wiener_filter",
    "wiener_sweep",
]

Regulariser = Literal["constant", "laplacian"]
Boundary = Literal["taper", "reflect", "circular"]
REGULARISERS: tuple[str, ...] = ("constant", "laplacian")
BOUNDARIES: tuple[str, ...] = ("taper", "reflect", "circular")


def wiener_filter(
    otf: torch.Tensor, k: torch.Tensor | float, reg_power: torch.Tensor | None = None
) -> torch.Tensor:
    """Wiener filter G = conj(H) / (|H|² + K·|L|²) (|L|² = 1 when ``reg_power`` is None).

    Args:
        otf: complex (..., Hf, Wf') transfer function H.
        k: noise-to-signal ratio K, a float or a tensor broadcasting against ``otf`` (e.g.
            (B, 1, 1, 1) per image).
        reg_power: real |L|², broadcasting against ``otf``, or None for a constant K.

    Returns:
        complex tensor, the broadcast shape of ``otf`` and ``k``.
    """
    power = torch.view_as_real(otf).square().sum(-1)
    denom = power + (k if reg_power is None else k * reg_power)
    return otf.conj() * denom.reciprocal()


def _prepare(
    images: torch.Tensor, psf: torch.Tensor, boundary: Boundary
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int], tuple[slice, slice]]:
    """Pad the images for deconvolution.

    Returns:
        (spectrum of the padded images, OTF, FFT grid (Hf, Wf), crop back to (H, W)).
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"unknown boundary {boundary!r}: choose one of {BOUNDARIES}")
    check_psf(psf, tuple(images.shape))
    if psf.dim() == 2:
        psf = psf[None]
    psf = psf.to(device=images.device, dtype=images.dtype)
    h, w = images.shape[-2:]
    if boundary == "circular":
        crop = (slice(0, h), slice(0, w))
        return torch.fft.rfft2(images), psf_to_otf(psf, (h, w)), (h, w), crop
    padded, crop = pad_for_deconvolution(images, psf, taper=boundary == "taper")
    grid = (padded.shape[-2], padded.shape[-1])
    return torch.fft.rfft2(padded), psf_to_otf(psf, grid), grid, crop


def _reg_power(
    regulariser: Regulariser, shape: tuple[int, int], like: torch.Tensor
) -> torch.Tensor | None:
    if regulariser == "constant":
        return None
    if regulariser == "laplacian":
        return laplacian_otf(shape, like.dtype, like.device) ** 2
    raise ValueError(f"unknown regulariser {regulariser!r}: choose one of {REGULARISERS}")


def _as_k(k: torch.Tensor | float, batch: int, like: torch.Tensor) -> torch.Tensor | float:
    if isinstance(k, torch.Tensor):
        k = k.to(device=like.device, dtype=like.dtype)
        if k.dim() == 0:
            return k
        if k.dim() == 1 and k.shape[0] == batch:
            return k[:, None, None, None]
        raise ValueError(
            f"k must be a float, a 0-d tensor or one value per image ({batch}), "
            f"got shape {tuple(k.shape)}"
        )
    if not k >= 0:
        raise ValueError(f"k (noise-to-signal ratio) must be >= 0, got {k}")
    return float(k)


def wiener_deconvolve(
    images: torch.Tensor,
    psf: torch.Tensor,
    k: torch.Tensor | float,
    regulariser: Regulariser = "constant",
    boundary: Boundary = "taper",
) -> torch.Tensor:
    """Batched Wiener deconvolution X̂ = F⁻¹{conj(H)·Y / (|H|² + K·|L|²)}.

    Args:
        images: (B, C, H, W) blurred images in the *linear* domain (undo the camera response
            first: ``camera.sensor.decode``).
        psf: (C, K, K) or (1, K, K), centre at K//2, K <= H, W.
        k: noise-to-signal ratio: float, 0-d tensor or (B,) tensor (one K per image).
        regulariser: "constant" (|L|² = 1) or "laplacian" (|L|² = Laplacian OTF², smooth prior,
            DC unregularised; equals ``skimage.restoration.wiener``'s default ``reg``).
        boundary: "taper" (reflect + edge taper, for the linear camera model; default),
            "reflect" (reflect padding only) or "circular" (no padding: the textbook
            periodic problem, equal to ``skimage.restoration.wiener`` with ``clip=False``).

    Returns:
        (B, C, H, W) deconvolved images (not clipped).
    """
    spec, otf, full_shape, (rows, cols) = _prepare(images, psf, boundary)
    g = wiener_filter(
        otf, _as_k(k, images.shape[0], images), _reg_power(regulariser, full_shape, images)
    )
    if g.shape == spec.shape or g.dim() < spec.dim() or g.shape[0] == 1:
        spec.mul_(g)  # spec is a fresh buffer: filter in place
    else:
        spec = spec * g
    out = torch.fft.irfft2(spec, s=full_shape)
    return out[..., rows, cols]


def wiener_sweep(
    images: torch.Tensor,
    psf: torch.Tensor,
    ks: torch.Tensor | list[float],
    score: Callable[[torch.Tensor], torch.Tensor],
    regulariser: Regulariser = "constant",
    boundary: Boundary = "taper",
) -> torch.Tensor:
    """Score Wiener reconstructions for every K without storing them all.

    The padded spectrum and OTF are computed once; each K costs one filter and one inverse FFT.

    Args:
        images: (B, C, H, W) linear-domain blurred images.
        psf: (C, K, K) or (1, K, K).
        ks: (N,) noise-to-signal ratios.
        score: maps the (B, C, H, W) linear reconstruction to a (B,) score (higher is better),
            e.g. SSIM against the originals after re-encoding.

    Returns:
        (N, B) scores.
    """
    ks = torch.as_tensor(ks, dtype=torch.float64)
    if ks.dim() != 1 or ks.numel() == 0 or (ks < 0).any():
        raise ValueError(f"ks must be a non-empty 1-D list of K >= 0, got {ks.tolist()}")
    spec, otf, full_shape, (rows, cols) = _prepare(images, psf, boundary)
    reg = _reg_power(regulariser, full_shape, images)
    scores = []
    for k in ks.tolist():
        out = torch.fft.irfft2(spec * wiener_filter(otf, k, reg), s=full_shape)[..., rows, cols]
        scores.append(score(out))
    return torch.stack(scores)


def log_k_grid(k_min: float = 1e-5, k_max: float = 1.0, num: int = 21) -> torch.Tensor:
    """(num,) log-spaced noise-to-signal ratios from k_min to k_max (float64)."""
    if not 0 < k_min < k_max or num < 2:
        raise ValueError(
            f"need 0 < k_min < k_max and num >= 2, got k_min={k_min}, k_max={k_max}, num={num}"
        )
    return torch.logspace(math.log10(k_min), math.log10(k_max), num, dtype=torch.float64)


def linear_model_deconvolve(
    images: torch.Tensor,
    psf: torch.Tensor,
    k: torch.Tensor | float,
    regulariser: Regulariser = "constant",
    iterations: int = 100,
    tol: float = 1e-6,
    init: torch.Tensor | None = None,
) -> torch.Tensor:
    """Regularised least squares with the camera's exact linear forward model (the Wiener
    estimate without any boundary approximation), by batched conjugate gradients.

    Solves (AᵀA + K·LᵀL) x = Aᵀy for every image and channel, where A x is the zero-padded
    linear convolution cropped to the image (``optics.functional.linear_convolve``: the scene
    is zero outside the frame, as the simulation assumes) and L = I ("constant") or the
    discrete Laplacian ("laplacian"). For a circular A this is exactly the Wiener filter.
    Each iteration costs three FFTs on an (H + K − 1)² grid.

    Args:
        images: (B, C, H, W) linear-domain captures.
        psf: (C, K, K) or (1, K, K), centre at K//2, K <= H, W.
        k: float, 0-d tensor or (B,) tensor.
        iterations: maximum CG iterations; ``tol``: stop when every relative residual is
            below it.
        init: optional (B, C, H, W) starting point (e.g. the padded Wiener estimate).

    Returns:
        (B, C, H, W) estimate (not clipped).
    """
    check_psf(psf, tuple(images.shape))
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if psf.dim() == 2:
        psf = psf[None]
    psf = psf.to(device=images.device, dtype=images.dtype)
    h, w = images.shape[-2:]
    kh, kw = psf.shape[-2:]
    grid = (
        scipy.fft.next_fast_len(h + kh - 1, real=True),
        scipy.fft.next_fast_len(w + kw - 1, real=True),
    )
    otf = psf_to_otf(psf, grid)
    reg = _reg_power(regulariser, grid, images)
    kk = _as_k(k, images.shape[0], images)
    reg_term = kk if reg is None else kk * reg

    def embed(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, (0, grid[1] - w, 0, grid[0] - h))

    def normal(x: torch.Tensor) -> torch.Tensor:
        fx = torch.fft.rfft2(embed(x))
        ax = torch.fft.irfft2(fx * otf, s=grid)[..., :h, :w]
        back = torch.fft.rfft2(embed(ax)) * otf.conj() + reg_term * fx
        return torch.fft.irfft2(back, s=grid)[..., :h, :w]

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(dim=(-2, -1), keepdim=True)

    rhs = torch.fft.irfft2(torch.fft.rfft2(embed(images)) * otf.conj(), s=grid)[..., :h, :w]
    x = torch.zeros_like(images) if init is None else init.to(images).clone()
    r = rhs - normal(x) if init is not None else rhs.clone()
    p = r.clone()
    rs = dot(r, r)
    rhs_norm = dot(rhs, rhs).clamp_min(torch.finfo(images.dtype).tiny)
    for _ in range(iterations):
        if bool((rs / rhs_norm).max() < tol**2):
            break
        q = normal(p)
        alpha = rs / dot(p, q).clamp_min(torch.finfo(images.dtype).tiny)
        x = x + alpha * p
        r = r - alpha * q
        rs_new = dot(r, r)
        p = r + (rs_new / rs.clamp_min(torch.finfo(images.dtype).tiny)) * p
        rs = rs_new
    return x

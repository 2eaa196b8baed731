"""Pure deconvolution maths for the non-blind attacks: tensors in, tensors out.

Conventions (shared with ``optics.functional.linear_convolve``): images are (B, C, H, W); a PSF
is (C, K, K) or (1, K, K), non-negative, its centre at index K//2. ``psf_to_otf`` zero-pads the
PSF to the FFT grid and rolls its centre to index 0 (the ``ifftshift`` convention, the same as
``skimage.restoration.uft.ir2tf``), so deconvolution introduces no shift.

The camera's forward model is a *linear* (zero-padded) convolution cropped to the image. A
circular Wiener filter applied to the raw capture would wrap the borders; ``wiener_deconvolve``
therefore (by default) extends the capture by K−1 pixels on every side by reflection, tapers the
extension towards its circularly blurred self so the periodic seam is smooth (MATLAB's
``edgetaper`` idea), deconvolves on that grid and crops the image back out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import scipy.fft
import torch

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


def _reflect_indices(n: int, before: int, after: int) -> np.ndarray:
    """Indices extending an axis of n samples by whole-sample symmetric reflection (numpy
    'reflect', edge sample not repeated), for any pad width."""
    idx = np.arange(-before, n + after)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def reflect_pad(images: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Reflect-pad the last two axes by (top, bottom, left, right), any width (a pad wider than
    the image keeps reflecting back and forth).

    Args:
        images: (..., H, W).

    Returns:
        (..., H + top + bottom, W + left + right).
    """
    top, bottom, left, right = pad
    h, w = images.shape[-2:]
    rows = torch.from_numpy(_reflect_indices(h, top, bottom)).to(images.device)
    cols = torch.from_numpy(_reflect_indices(w, left, right)).to(images.device)
    return images.index_select(-2, rows).index_select(-1, cols)


def _raised_cosine_ramp(n: int, inner: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(n,) weights: 1 on [inner[0], inner[1]), rising from 0 at the array ends as a raised
    cosine across each margin."""
    i = torch.arange(n, dtype=torch.float64, device=device)
    lo, hi = inner
    w = torch.ones(n, dtype=torch.float64, device=device)
    if lo > 0:
        t = (i[:lo] + 0.5) / lo
        w[:lo] = 0.5 - 0.5 * torch.cos(math.pi * t)
    m = n - hi
    if m > 0:
        t = (n - i[hi:] - 0.5) / m
        w[hi:] = 0.5 - 0.5 * torch.cos(math.pi * t)
    return w


def edge_taper(
    padded: torch.Tensor, otf: torch.Tensor, inner: tuple[int, int, int, int]
) -> torch.Tensor:
    """Blend the padding margin of ``padded`` into its circularly blurred version.

    J = w·I + (1 − w)·(I ⊛ h) (circular), with w = 1 on the inner (original image) window and a
    raised-cosine ramp to 0 at the outer border, so the periodic extension is continuous and the
    margin looks like blurred content (MATLAB ``edgetaper``'s idea) while the image itself is
    untouched.

    Args:
        padded: (B, C, Hf, Wf).
        otf: complex (C or 1, Hf, Wf//2 + 1) from :func:`psf_to_otf` on the same grid.
        inner: (top, bottom, left, right) margin widths around the original image.

    Returns:
        (B, C, Hf, Wf).
    """
    hf, wf = padded.shape[-2:]
    top, bottom, left, right = inner
    blurred = torch.fft.irfft2(torch.fft.rfft2(padded) * otf, s=(hf, wf))
    wy = _raised_cosine_ramp(hf, (top, hf - bottom), padded.device)
    wx = _raised_cosine_ramp(wf, (left, wf - right), padded.device)
    w = (wy[:, None] * wx[None, :]).to(padded.dtype)
    return w * padded + (1 - w) * blurred


def pad_for_deconvolution(
    images: torch.Tensor, psf: torch.Tensor, taper: bool = True
) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """Extend captures for circular deconvolution under a linear forward model.

    Reflect-pads by K−1 on every side (more than the K//2 the linear model needs), up to a
    fast FFT size, and (``taper``) blends the margin into its circular blur (:func:`edge_taper`).

    Args:
        images: (B, C, H, W); psf: (C or 1, K, K).

    Returns:
        (padded (B, C, Hf, Wf), (row slice, column slice) that crops the image back out).
    """
    check_psf(psf, tuple(images.shape))
    if psf.dim() == 2:
        psf = psf[None]
    h, w = images.shape[-2:]
    kh, kw = psf.shape[-2:]
    py, px = max(kh - 1, 1), max(kw - 1, 1)
    hf = scipy.fft.next_fast_len(h + 2 * py, real=True)
    wf = scipy.fft.next_fast_len(w + 2 * px, real=True)
    pad = (py, hf - h - py, px, wf - w - px)
    padded = reflect_pad(images, pad)
    if taper:
        otf = psf_to_otf(psf.to(device=images.device, dtype=images.dtype), (hf, wf))
        padded = edge_taper(padded, otf, pad)
    return padded, (slice(py, py + h), slice(px, px + w))


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

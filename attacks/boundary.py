"""Boundary handling: extend captures so a circular (FFT) deconvolution fits the camera's
*linear* forward model.

The camera convolves with zero padding and crops to the image. A circular Wiener filter applied
to the raw capture would wrap the borders; :func:`pad_for_deconvolution` therefore extends the
capture by K−1 pixels on every side by reflection and tapers the extension towards its
circularly blurred self so the periodic seam is smooth (MATLAB's ``edgetaper`` idea); the
deconvolution runs on that grid and crops the image back out.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch

from .otf import check_psf, psf_to_otf

__all__ = ["edge_taper", "pad_for_deconvolution", "reflect_pad"]


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

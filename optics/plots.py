"""The project's lens figures: PSFs, height maps, MTF and PSF profiles (one drawing per concept).

Pure functions: arrays in, a matplotlib ``Figure`` out (the caller saves it with
:func:`save_figure`), or arrays in, display-ready arrays out (:func:`lens_images`, for
TensorBoard). Conventions are the lens's: PSF (Λ, K, K) with the centre at K//2, height maps
(N, N) in µm with row 0 = +y, NaN outside the aperture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .lens import ZernikeLens

__all__ = [
    "height_figure",
    "lens_figure",
    "lens_images",
    "mtf_figure",
    "psf_figure",
    "psf_profile_figure",
    "save_figure",
    "save_psf_images",
]

PSF_DECADES = 6  # log10 PSF panels show this many decades below the peak
PSF_FLOOR = 1e-9
_COLORS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:orange")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _draw_log_psf(ax: Axes, psf: np.ndarray, title: str, extent_um: float | None) -> None:
    """One (K, K) PSF in log10 down to PSF_DECADES below its peak; axes in µm when known."""
    log_psf = np.log10(np.maximum(psf, PSF_FLOOR))
    ext = None if extent_um is None else (-extent_um, extent_um, -extent_um, extent_um)
    im = ax.imshow(
        log_psf, extent=ext, cmap="magma", vmin=max(float(log_psf.max()) - PSF_DECADES, -9)
    )
    ax.set_title(title)
    if extent_um is not None:
        ax.set_xlabel("x (µm)")
        ax.set_ylabel("y (µm)")
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def _draw_height(ax: Axes, height_um: np.ndarray, title: str, half_width_mm: float | None) -> None:
    """One (N, N) height map (µm, NaN outside the aperture); axes in mm when known."""
    ext = None if half_width_mm is None else (-half_width_mm, half_width_mm) * 2
    im = ax.imshow(height_um, extent=ext, cmap="viridis")
    ax.set_title(title, fontsize=10)
    if half_width_mm is not None:
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
    ax.figure.colorbar(im, ax=ax, shrink=0.85, label="µm")


def psf_figure(
    psf: np.ndarray, wavelengths_nm: Sequence[float], pitch_um: float | None = None
) -> Figure:
    """One log10 panel per wavelength of ``psf`` (Λ, K, K); x/y in µm given the pixel pitch."""
    plt = _pyplot()
    psf = np.asarray(psf, dtype=np.float64)
    half_um = None if pitch_um is None else psf.shape[-1] / 2 * pitch_um
    fig, axes = plt.subplots(1, len(psf), figsize=(4 * len(psf), 3.6), squeeze=False)
    for ax, p, w in zip(axes[0], psf, wavelengths_nm, strict=True):
        _draw_log_psf(ax, p, f"PSF {w:g} nm (log10)", half_um)
    fig.tight_layout()
    return fig


def height_figure(
    panels: Sequence[tuple[np.ndarray, str]], half_width_mm: float | None = None
) -> Figure:
    """Height maps side by side: ``panels`` = [(height (N, N) µm, title), ...]."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for ax, (height, title) in zip(axes[0], panels, strict=True):
        _draw_height(ax, np.asarray(height, dtype=np.float64), title, half_width_mm)
    fig.tight_layout()
    return fig


def lens_figure(lens: ZernikeLens) -> Figure:
    """The lens at a glance: its PSF per wavelength (no fabrication noise) and the Zernike
    height (µm, base lens removed)."""
    plt = _pyplot()
    with torch.no_grad():
        psf = lens(height_noise=False).double().cpu().numpy()
        height = lens.height_map_um(include_base=False).double().cpu().numpy()
    mask = aperture_mask_of(lens)
    fig, axes = plt.subplots(1, len(psf) + 1, figsize=(4 * (len(psf) + 1), 3.6), squeeze=False)
    half_um = psf.shape[-1] / 2 * lens.sensor_pitch_um
    for ax, p, w in zip(axes[0][:-1], psf, lens.wavelengths_nm, strict=True):
        _draw_log_psf(ax, p, f"PSF {w:g} nm (log10)", half_um)
    half_mm = lens.pupil_grid * lens.pupil_pitch_um * 1e-3 / 2
    _draw_height(axes[0][-1], np.where(mask, height, np.nan), "Zernike height (µm)", half_mm)
    fig.tight_layout()
    return fig


def aperture_mask_of(lens: ZernikeLens) -> np.ndarray:
    """(N, N) bool: the lens's aperture samples on its pupil grid."""
    ones = torch.ones(lens.num_aperture, device=lens.aperture_index.device)
    return lens.to_grid(ones).bool().cpu().numpy()


def lens_images(
    psf: torch.Tensor,
    height_um: torch.Tensor | None,
    wavelengths_nm: Sequence[float] | None = None,
) -> dict[str, torch.Tensor]:
    """TensorBoard images (1, H, W) in [0, 1]: ``psf_<λ>nm`` (``psf_all`` for one PSF shared by
    every wavelength, ``psf_<i>`` without wavelengths)
    shown as sqrt(p / max p) so the tails are visible, and ``height_map`` min–max scaled.

    Args:
        psf: (Λ, K, K); height_um: (N, N), or None for a lens without a surface (measured).
    """
    if wavelengths_nm and len(wavelengths_nm) == len(psf):
        names = [f"{w:g}nm" for w in wavelengths_nm]
    else:  # a grey measured PSF serves every wavelength: one image, not one per λ
        names = ["all"] if len(psf) == 1 else [str(i) for i in range(len(psf))]
    out = {f"psf_{n}": (p / p.max()).sqrt()[None] for n, p in zip(names, psf, strict=True)}
    if height_um is None:
        return out
    span = (height_um.max() - height_um.min()).clamp_min(1e-12)
    out["height_map"] = ((height_um - height_um.min()) / span)[None]
    return out


def mtf_figure(
    freqs_per_mm: np.ndarray,
    curves: np.ndarray,
    ideal_curves: np.ndarray,
    wavelengths_nm: Sequence[float],
) -> Figure:
    """Radial MTF per wavelength (Λ, F) against the aberration-free lens's (dashed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, w in enumerate(wavelengths_nm):
        c = _COLORS[i % len(_COLORS)]
        ax.plot(freqs_per_mm, curves[i], color=c, label=f"{w:g} nm")
        ax.plot(freqs_per_mm, ideal_curves[i], color=c, ls="--", lw=0.8)
    ax.set_xlabel("spatial frequency (cycles/mm)")
    ax.set_ylabel("MTF (radial mean)")
    ax.set_title("MTF per wavelength (dashed: aberration-free lens)")
    ax.set_ylim(0, 1.02)
    ax.legend()
    fig.tight_layout()
    return fig


def psf_profile_figure(
    psf: np.ndarray,
    mean_psf: np.ndarray,
    std_psf: np.ndarray,
    strehl: np.ndarray,
    wavelengths_nm: Sequence[float],
    pitch_um: float,
) -> Figure:
    """Per wavelength, the row through the nominal PSF's peak (log scale): nominal, the mean of
    perturbed PSFs ± 1 std, and the perturbed Strehl ratios (D, Λ) in the title.

    Args:
        psf, mean_psf, std_psf: (Λ, K, K).
    """
    plt = _pyplot()
    k = psf.shape[-1]
    x_um = (np.arange(k) - k // 2) * pitch_um
    lam = list(wavelengths_nm)
    fig, axes = plt.subplots(1, len(lam), figsize=(4 * len(lam), 3.4), squeeze=False)
    for i, (ax, w) in enumerate(zip(axes[0], lam, strict=True)):
        row = int(np.unravel_index(np.argmax(psf[i]), psf[i].shape)[0])
        mean, std = mean_psf[i, row], std_psf[i, row]
        ax.semilogy(x_um, np.maximum(psf[i, row], PSF_FLOOR), "k", lw=1, label="nominal")
        ax.semilogy(x_um, np.maximum(mean, PSF_FLOOR), "tab:red", lw=0.8, label="MC mean")
        ax.fill_between(
            x_um,
            np.maximum(mean - std, PSF_FLOOR),
            mean + std,
            color="tab:red",
            alpha=0.3,
            label="± 1 std",
        )
        s = strehl[:, i]
        ax.set_title(f"{w:g} nm: Strehl {s.mean():.4f} ± {s.std():.2g}", fontsize=10)
        ax.set_xlabel("x (µm), row through the peak")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_psf_images(out: str | Path, psf: np.ndarray, wavelengths_nm: Sequence[float]) -> list[str]:
    """``psf_<λ>nm.png``: each PSF of (Λ, K, K) in log10 with the PSF colour map, one pixel per
    sensor pixel; returns the names written."""
    plt = _pyplot()
    names = []
    for p, w in zip(np.asarray(psf, dtype=np.float64), wavelengths_nm, strict=True):
        log_psf = np.log10(np.maximum(p, PSF_FLOOR))
        name = f"psf_{w:g}nm.png"
        plt.imsave(
            Path(out) / name, log_psf, cmap="magma", vmin=max(log_psf.max() - PSF_DECADES, -9)
        )
        names.append(name)
    return names


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` and free it; returns the path."""
    plt = _pyplot()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)

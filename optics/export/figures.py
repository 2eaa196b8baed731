"""The export's figures (PSF, height, MTF, fabrication error), drawn by ``optics.plots``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import plots
from ..lens import ZernikeLens

__all__ = ["write_figures"]


def write_figures(
    out: Path,
    lens: ZernikeLens,
    psfs: dict[str, Any],
    rel_um: np.ndarray,
    freeform_um: np.ndarray,
    mc: dict[str, np.ndarray] | None,
) -> list[str]:
    """``psf.png``, ``height.png``, ``mtf.png`` and (with Monte-Carlo draws)
    ``fabrication_error.png``; returns the names written.

    Args:
        psfs: :func:`optics.export.analysis.psf_metrics` of the lens.
        rel_um, freeform_um: (N, N) height above the lowest point and freeform part, µm.
        mc: :func:`optics.fabrication.monte_carlo_psfs` draws or None.
    """
    lam = lens.wavelengths_nm
    psf = psfs["psf"]
    plots.save_figure(plots.psf_figure(psf, lam, lens.sensor_pitch_um), out / "psf.png")
    half_mm = lens.pupil_grid * lens.pupil_pitch_um / 2e3
    panels = [
        (rel_um, "surface height (µm above lowest point)"),
        (freeform_um, "freeform part: Zernike − piston/tip/tilt (µm)"),
    ]
    plots.save_figure(plots.height_figure(panels, half_mm), out / "height.png")
    freqs, curves = psfs["mtf"]
    fig = plots.mtf_figure(freqs, curves, psfs["mtf_ideal"], lam)
    plots.save_figure(fig, out / "mtf.png")
    written = ["psf.png", "height.png", "mtf.png"]
    if mc is not None and len(mc["strehl"]):
        fig = plots.psf_profile_figure(
            psf, mc["mean_psf"], mc["std_psf"], mc["strehl"], lam, lens.sensor_pitch_um
        )
        plots.save_figure(fig, out / "fabrication_error.png")
        written.append("fabrication_error.png")
    return written

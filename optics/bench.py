"""A simulated bench measurement of a designed lens's PSF: what a point source imaged through
the lens as made would give on a bench camera, to test (and plan) the measured-PSF workflow.

The bench camera has its own pixel pitch and window, the spot lands off its pixel grid
(sub-pixel offset), and the frame carries a background level, Gaussian read noise and the
bench camera's quantisation. ``optics.measured_psf.load_measured_psf`` reads the result back.
"""

from __future__ import annotations

import numpy as np
import torch

from .lens import ZernikeLens
from .measured_psf import offset_area_matrix

__all__ = ["simulate_bench_measurement"]


@torch.no_grad()
def simulate_bench_measurement(
    lens: ZernikeLens,
    pitch_um: float,
    size_px: int,
    *,
    offset_px: tuple[float, float] = (0.0, 0.0),
    background_dn: float = 0.0,
    read_noise_dn: float = 0.0,
    bits: int = 12,
    peak_fraction: float = 0.8,
    seed: int = 0,
) -> np.ndarray:
    """Bench frame (Λ, size_px, size_px) uint16 of ``lens``'s PSF at ``pitch_um`` per pixel.

    The optical axis sits ``offset_px`` (row, column; bench pixels) from the frame's centre
    pixel size_px//2; each channel's peak reaches ``peak_fraction`` of the 2**bits − 1 full
    scale above ``background_dn``; then read noise (σ in DN), rounding and clipping to
    [0, 2**bits − 1]. The lens's surface is used as it is (no fabrication noise).
    """
    config = lens.config.replace(
        psf_size_px=int(size_px), sensor_pitch_um=float(pitch_um), sampling_check="off"
    )
    bench = ZernikeLens(config).to(lens.fixed_coefficients_um.device)
    bench.load_state_dict(lens.state_dict())
    intensity = bench.field_intensity(height_noise=False).double().cpu().numpy()
    m, pupil_um = intensity.shape[-1], float(bench.pupil_pitch_um)
    # field sample i sits at (i − m//2)·pupil_um from the axis; the axis at offset·pitch
    rows = offset_area_matrix(
        m, pupil_um, m // 2 - offset_px[0] * pitch_um / pupil_um, size_px, pitch_um
    )
    cols = offset_area_matrix(
        m, pupil_um, m // 2 - offset_px[1] * pitch_um / pupil_um, size_px, pitch_um
    )
    frame = rows @ intensity @ cols.T
    full = 2**bits - 1
    frame = frame / frame.max(axis=(-2, -1), keepdims=True) * peak_fraction * (full - background_dn)
    rng = np.random.default_rng(seed)
    frame = frame + background_dn + rng.normal(0.0, read_noise_dn, frame.shape)
    return np.clip(np.round(frame), 0, full).astype(np.uint16)

"""Optics demo helpers and one end-to-end run."""

import pytest
import torch

from optics.demo import psf_rms_radius_px, run


def test_psf_rms_radius_of_known_shapes():
    psf = torch.zeros(2, 33, 33, dtype=torch.float64)
    psf[0, 16, 16] = 1.0
    psf[1, 16, 10] = psf[1, 16, 22] = 0.5  # two points 6 px from their centroid
    assert psf_rms_radius_px(psf).tolist() == pytest.approx([0.0, 6.0])


def test_demo_writes_files(tmp_path):
    summary = run(tmp_path, defocus_um=3.0, init_std_um=0.0, seed=0, size=64)
    for name in ("original.png", "captured.png", "psfs.png", "height_map.png", "summary.txt"):
        assert (tmp_path / name).is_file()
    assert 0 < summary["ssim_captured_vs_original"] < 0.9
    assert summary["max_phase_step_rad"] < 3.1416

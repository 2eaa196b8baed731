"""optics.plots: every figure draws from plain arrays and saves; TensorBoard images in [0, 1]."""

import numpy as np
import torch

from optics import Camera, plots


def test_figures_draw_and_save(tmp_path, small_lens_kwargs):
    lens = Camera("privacy", initial_defocus_um=0.3, **small_lens_kwargs).lens.eval()
    psf = lens().detach().double().numpy()
    lam = lens.wavelengths_nm
    figures = {
        "psf.png": plots.psf_figure(psf, lam, lens.sensor_pitch_um),
        "height.png": plots.height_figure([(np.ones((8, 8)), "flat")], 0.1),
        "mtf.png": plots.mtf_figure(np.arange(5), np.ones((3, 5)), np.ones((3, 5)), lam),
        "profile.png": plots.psf_profile_figure(psf, psf, 0 * psf, np.ones((4, 3)), lam, 4.0),
        "lens.png": plots.lens_figure(lens),
    }
    assert len(figures["psf.png"].axes) == 2 * len(lam)  # a colour bar per panel
    assert len(figures["lens.png"].axes) == 2 * (len(lam) + 1)
    for name, fig in figures.items():
        assert plots.save_figure(fig, tmp_path / name).is_file()
    assert plots.save_psf_images(tmp_path, psf, lam) == [
        "psf_460nm.png",
        "psf_550nm.png",
        "psf_640nm.png",
    ]
    assert plots.aperture_mask_of(lens).sum() == lens.num_aperture


def test_lens_images_are_normalised():
    psf = torch.rand(3, 8, 8)
    height = torch.randn(16, 16)
    images = plots.lens_images(psf, height)
    assert set(images) == {"psf_0", "psf_1", "psf_2", "height_map"}
    for image in images.values():
        assert image.dim() == 3 and image.shape[0] == 1
        assert float(image.min()) >= 0 and float(image.max()) == 1.0
    named = plots.lens_images(psf, height, (460.0, 550.0, 640.0))
    assert set(named) == {"psf_460nm", "psf_550nm", "psf_640nm", "height_map"}
    # a grey measured PSF (one channel for every wavelength) is one image, not a crash
    grey = plots.lens_images(psf[:1], None, (460.0, 550.0, 640.0))
    assert set(grey) == {"psf_all"} and grey["psf_all"].shape == (1, 8, 8)

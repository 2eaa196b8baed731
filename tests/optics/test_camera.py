"""Camera presets, trainable terms, fabrication noise, losses and input validation."""

import math

import numpy as np
import pytest
import torch

from optics import Camera, CameraConfig, distortion_loss, psf_mask_loss
from optics.lens import ZernikeLens


def test_default_camera_parameters():
    cam = Camera()  # the documented defaults (docs/design.md)
    lens = cam.lens
    assert lens.wavelengths_nm == (460.0, 550.0, 640.0)
    assert lens.pupil_grid == 896 and lens.n_pad == 1792
    assert lens.sensor_pitch_um == pytest.approx(10.5)
    assert lens.num_zernike == 350 and lens.trainable_indices == tuple(range(4, 351))
    assert lens.fabrication_tolerance_um == pytest.approx(0.02)
    lens.eval()
    psf = cam.psf()
    assert psf.shape == (3, 256, 256)
    assert torch.allclose(psf.sum((-1, -2)), torch.ones(3), atol=1e-5)


def test_presets_and_trainable_terms(small_lens_kwargs):
    privacy = Camera("privacy", **small_lens_kwargs)
    assert privacy.lens.trainable_indices == tuple(range(4, 16))
    defocus = Camera("defocus", **small_lens_kwargs)
    assert defocus.lens.trainable_indices == (4,)
    assert [n for n, p in defocus.named_parameters()] == ["lens.trainable_coefficients_um"]
    assert defocus.lens.trainable_coefficients_um.numel() == 1
    assert Camera("lowres").lens is None and Camera("ideal").lens is None
    assert sum(p.numel() for p in Camera("ideal").parameters()) == 0


def test_gradients_only_reach_configured_terms(small_lens_kwargs):
    cam = Camera("privacy", trainable_indices=[5, 7], init_std_um=0.1, **small_lens_kwargs)
    img = torch.rand(2, 3, 24, 24)
    captured, psf = cam.capture(img)
    (distortion_loss(captured, img) + psf_mask_loss(psf, 8)).backward()
    grad = cam.lens.trainable_coefficients_um.grad
    assert grad.shape == (2,) and torch.all(grad != 0)
    full = cam.lens.coefficients_um()
    assert full[0] == full[1] == full[2] == 0  # piston / tip / tilt untouched


def test_fabrication_noise_only_in_training(small_lens_kwargs):
    lens = ZernikeLens(fabrication_tolerance_um=0.05, **small_lens_kwargs)
    lens.train()
    assert not torch.allclose(lens(), lens())
    lens.eval()
    assert torch.equal(lens(), lens())


def test_finite_object_distance_refocuses(small_lens_kwargs):
    near = ZernikeLens(object_distance_mm=20.0, **small_lens_kwargs).eval()
    assert near.focal_length_mm == pytest.approx(1 / (1 / 12 + 1 / 20))
    focused = ZernikeLens(**small_lens_kwargs).eval()
    # focused for its own object distance → the same (diffraction-limited) peak
    assert float(near()[1].max().detach()) == pytest.approx(
        float(focused()[1].max().detach()), rel=0.02
    )
    blurred = ZernikeLens(object_distance_mm=20.0, focal_length_mm=12.0, **small_lens_kwargs)
    assert float(blurred.eval()()[1].max()) < 0.5 * float(focused()[1].max())


def test_losses():
    img = torch.rand(1, 3, 8, 8)
    assert float(distortion_loss(img, img)) == 1.0
    assert float(distortion_loss(torch.zeros_like(img), torch.ones_like(img))) == 0.0
    psf = torch.zeros(1, 64, 64)
    psf[0, 32, 32] = 1.0
    assert float(psf_mask_loss(psf, 8)) == 0.0
    psf = torch.zeros(1, 64, 64)
    psf[0, 0, 0] = 0.6
    psf[0, 63, 63] = 0.8
    assert float(psf_mask_loss(psf, 8)) == pytest.approx(1.0)


def test_config_holds_a_lens_config_and_round_trips_through_yaml(small_lens_kwargs):
    import yaml

    from optics import LensConfig

    lens = {**small_lens_kwargs, "initial_coefficients_um": {5: 0.1}}
    cfg = CameraConfig(preset="defocus", lens=lens)
    assert isinstance(cfg.lens, LensConfig) and cfg.lens.pupil_grid == lens["pupil_grid"]
    plain = cfg.to_dict()
    assert plain["lens"]["wavelengths_nm"] == [460.0, 550.0, 640.0]  # lists, not tuples
    again = CameraConfig.from_dict(yaml.safe_load(yaml.safe_dump(plain)))
    assert again == cfg


def test_flat_and_dotted_lens_options_go_under_lens(small_lens_kwargs):
    """A checkpoint (or lens.json v1) written before the lens options moved under ``lens``
    holds them flat: it reads the same; ``lens.<name>`` keys (KEY=VALUE options) too."""
    nested = CameraConfig.from_dict({"preset": "privacy", "lens": dict(small_lens_kwargs)})
    assert CameraConfig.from_dict({"preset": "privacy", **small_lens_kwargs}) == nested
    dotted = {
        f"lens.{k}": str(v) if k == "num_zernike" else v for k, v in small_lens_kwargs.items()
    }
    assert CameraConfig.from_dict({"preset": "privacy", **dotted}) == nested
    # a flat key overrides the nested one: Camera(config, num_zernike=...) keyword overrides
    both = {"lens": dict(small_lens_kwargs), "num_zernike": 6}
    assert CameraConfig.from_dict(both).lens.num_zernike == 6
    assert CameraConfig.from_dict(both).lens.pupil_grid == small_lens_kwargs["pupil_grid"]
    with pytest.raises(ValueError, match=r"unknown lens option\(s\) \['pupil_gird'\]"):
        CameraConfig.from_dict({"lens": {"pupil_gird": 64}})
    with pytest.raises(ValueError, match=r"lens\.pupil_grid='x' is not a number"):
        CameraConfig.from_dict({"lens.pupil_grid": "x"})


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"wavelengths_nm": [550.0, -3.0]}, "wavelengths_nm"),
        ({"wavelengths_nm": []}, "wavelengths_nm"),
        ({"pupil_pitch_um": 0.0}, "pupil_pitch_um"),
        ({"sensor_distance_mm": -1.0}, "sensor_distance_mm"),
        ({"pupil_grid": 0}, "pupil_grid"),
        ({"pupil_grid": 63}, "pupil_grid"),
        ({"num_zernike": 0}, "num_zernike"),
        ({"object_distance_mm": 0.0}, "object_distance_mm"),
        ({"psf_size_px": 0}, "psf_size_px"),
        ({"psf_size_px": 600}, "PSF larger than the field"),
        ({"sensor_pitch_um": 2.0}, "sensor_pitch_um"),
        ({"pad_factor": 1, "sensor_distance_mm": 40.0}, "pad_factor"),
        ({"focal_length_mm": 0.02, "psf_size_px": 16}, "phase aliases"),
        ({"trainable_indices": [2, 400]}, "trainable_indices"),
        ({"fabrication_tolerance_um": -0.1}, "fabrication_tolerance_um"),
        ({"propagation": "raytrace"}, "propagation"),
        ({"material": "unobtainium"}, "unknown material"),
        ({"read_noise_std": -1.0}, "noise"),
        ({"response": "log"}, "response"),
    ],
)
def test_invalid_settings_name_the_field(small_lens_kwargs, override, match):
    with pytest.raises(ValueError, match=match):
        Camera("privacy", **{**small_lens_kwargs, **override})


def test_unknown_preset_and_option():
    with pytest.raises(ValueError, match="unknown camera preset 'pinhole'"):
        Camera("pinhole")
    with pytest.raises(ValueError, match="unknown camera option"):
        Camera({"preset": "privacy", "focal_lenght_mm": 20})
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        Camera("ideal")(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="divide uint8"):
        Camera("ideal")(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_save_and_load_camera(tmp_path, small_lens_kwargs):
    from optics import load_camera, save_camera

    cam = Camera("privacy", init_std_um=0.1, **small_lens_kwargs)
    save_camera(cam, tmp_path / "cam.pt")
    again = load_camera(tmp_path / "cam.pt")
    assert torch.equal(again.lens.coefficients_um(), cam.lens.coefficients_um())
    # Lightning-style checkpoint
    ckpt = {
        "hyper_parameters": {"camera": cam.config.to_dict()},
        "state_dict": {f"camera.{k}": v for k, v in cam.state_dict().items()},
    }
    torch.save(ckpt, tmp_path / "run.ckpt")
    assert torch.equal(
        load_camera(tmp_path / "run.ckpt").lens.coefficients_um(), cam.lens.coefficients_um()
    )
    # written before the lens options moved under "lens": the flat camera dict reads the same
    flat = cam.config.to_dict()
    flat.update(flat.pop("lens"))
    torch.save({**ckpt, "hyper_parameters": {"camera": flat}}, tmp_path / "old.ckpt")
    old = load_camera(tmp_path / "old.ckpt")
    assert old.config == cam.config
    assert torch.equal(old.lens.coefficients_um(), cam.lens.coefficients_um())
    torch.save({"state_dict": {}}, tmp_path / "nolens.ckpt")
    with pytest.raises(ValueError, match="holds no camera"):
        load_camera(tmp_path / "nolens.ckpt")
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        load_camera(tmp_path / "missing.ckpt")


class _Payload:
    """Not a tensor nor a plain container: what a weights-only load refuses."""


def test_checkpoints_are_read_weights_only(tmp_path, small_lens_kwargs):
    from optics.checkpoint_file import read_checkpoint

    cam = Camera("privacy", **small_lens_kwargs)
    torch.save({"camera_config": cam.config.to_dict(), "extra": _Payload()}, tmp_path / "obj.pt")
    with pytest.raises(ValueError, match=r"obj\.pt holds Python objects .*privcam writes none"):
        read_checkpoint(tmp_path / "obj.pt")


def test_ideal_camera_is_identity_without_noise():
    cam = Camera("ideal", read_noise_std=0.0, quantize_bits=None)
    img = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    np.testing.assert_allclose(cam.double()(img), img, atol=1e-9)
    assert cam.psf() is None


def test_lowres_camera_bins_pixels():
    cam = Camera(
        "lowres",
        lowres_size=4,
        read_noise_std=0.0,
        quantize_bits=None,
        upsample_mode="nearest",
        response="linear",
        linearize_input=False,
    )
    img = torch.rand(1, 3, 16, 16)
    out = cam(img)
    assert out.shape == img.shape
    blocks = img.reshape(1, 3, 4, 4, 4, 4).mean((3, 5))
    np.testing.assert_allclose(out[..., ::4, ::4], blocks, atol=1e-6)


def test_gradcheck_coefficients_to_captured_image(small_lens_kwargs):
    kw = dict(
        small_lens_kwargs,
        pupil_grid=16,
        pad_factor=8,
        sensor_distance_mm=3.0,
        psf_size_px=8,
        num_zernike=10,
    )
    cam = Camera(
        "privacy",
        read_noise_std=0.0,
        quantize_bits=None,
        fabrication_tolerance_um=0.0,
        init_std_um=0.05,
        **kw,
    ).double()
    img = torch.rand(1, 3, 10, 10, dtype=torch.float64) * 0.8 + 0.1

    def captured(coefficients):
        params = {"lens.trainable_coefficients_um": coefficients}
        return torch.func.functional_call(cam, params, (img,))

    c0 = cam.lens.trainable_coefficients_um.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(captured, (c0,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_band_mtf_loss_closed_forms():
    from optics import band_mtf_loss

    delta = torch.zeros(2, 64, 64)
    delta[:, 32, 32] = 1.0
    assert float(band_mtf_loss(delta, (1 / 16, 0.5))) == pytest.approx(1.0)
    # a Gaussian PSF of σ px: MTF(f) = exp(−2π²σ²f²) at every grid frequency f (cycles/px)
    sigma = 2.0
    c = torch.arange(64, dtype=torch.float64) - 32
    g = torch.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2 * sigma**2))
    gauss = (g / g.sum())[None]
    f = torch.fft.fftfreq(64, dtype=torch.float64)
    fr = torch.hypot(f[:, None], f[None, :])
    band = (fr >= 0.05) & (fr < 0.2)
    expected = torch.exp(-2 * math.pi**2 * sigma**2 * fr[band] ** 2).mean()
    assert float(band_mtf_loss(gauss, (0.05, 0.2))) == pytest.approx(float(expected), rel=1e-6)
    # a 2-px box has an OTF zero at Nyquist: the loss still has a finite gradient there
    box = torch.zeros(1, 8, 8)
    box[0, 4, 3:5] = 0.5
    box.requires_grad_(True)
    band_mtf_loss(box, (0.25, 0.7)).backward()
    assert torch.isfinite(box.grad).all() and box.grad.abs().sum() > 0
    for bad in ((0.3, 0.2), (-0.1, 0.2), (0.1, 0.9)):
        with pytest.raises(ValueError, match="cycles/px"):
            band_mtf_loss(gauss, bad)
    with pytest.raises(ValueError, match="holds no frequency"):
        band_mtf_loss(torch.ones(1, 4, 4) / 16, (0.01, 0.2))

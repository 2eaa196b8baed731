"""The measured-PSF reader against closed forms, its formats and every bad input."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from scipy.special import erf

from optics import Camera, load_camera, save_camera
from optics.measured_psf import (
    MeasurementOptions,
    centroid_px,
    load_measured_psf,
    read_psf_file,
)


def pixel_gaussian(n: int, pitch_um: float, sigma_um: float, centre_px: tuple[float, float]):
    """Exact pixel integrals (n, n) of a unit 2-D Gaussian centred ``centre_px`` pixels in."""

    def axis(c: float) -> np.ndarray:
        edges = (np.arange(n + 1) - 0.5 - c) * pitch_um / (np.sqrt(2) * sigma_um)
        return np.diff(erf(edges)) / 2

    return np.outer(axis(centre_px[0]), axis(centre_px[1]))


def write_png(path: Path, image: np.ndarray) -> Path:
    Image.fromarray(image).save(path)
    return path


def test_gaussian_resampled_to_the_sensor_pitch_matches_its_closed_form(tmp_path):
    # a Gaussian of σ = 9 µm measured at 2 µm and at 3 µm pixels, off-centre by a fraction of
    # a pixel, resampled to 5 µm sensor pixels: both give the exact 5 µm pixel integrals to the
    # area weights' accuracy (each bench pixel's light taken as uniform over it: ≈ 1 % of the
    # peak at 2 µm, ≈ 2.5 % at 3 µm); at the sensor pitch itself, centred, exactly
    expected = pixel_gaussian(32, 5.0, 9.0, (16, 16))
    same = pixel_gaussian(52, 5.0, 9.0, (26, 26))
    np.save(tmp_path / "same.npy", same)
    psf = load_measured_psf(tmp_path / "same.npy", 5.0, 32, options=MeasurementOptions(5.0))
    assert np.abs(psf[0] - expected / expected.sum()).max() < 1e-6
    for pitch in (2.0, 3.0):
        n = round(32 * 5 / pitch) + 20
        measured = pixel_gaussian(n, pitch, 9.0, (n / 2 + 0.37, n / 2 - 1.61))
        np.save(tmp_path / "g.npy", measured)
        psf = load_measured_psf(tmp_path / "g.npy", 5.0, 32, options=MeasurementOptions(pitch))
        assert psf.shape == (1, 32, 32) and psf.sum() == pytest.approx(1, abs=1e-5)
        assert np.abs(psf[0] - expected).max() < 0.03 * expected.max()
        row, col = centroid_px(psf.astype(np.float64))
        assert row == pytest.approx(16, abs=0.02) and col == pytest.approx(16, abs=0.02)


def test_background_border_median_and_dark_frame(tmp_path):
    spot = pixel_gaussian(64, 4.0, 6.0, (32, 32))
    clean = load_measured_psf_array(tmp_path, spot, 4.0)
    with_level = spot * 1000 + 37.0
    assert np.allclose(load_measured_psf_array(tmp_path, with_level, 4.0), clean, atol=1e-6)
    ramp = np.linspace(0, 50, 64)[None, :] * np.ones((64, 1))  # a dark frame that is not flat
    np.save(tmp_path / "dark.npy", ramp)
    np.save(tmp_path / "psf.npy", spot * 1000 + ramp)
    opts = MeasurementOptions(4.0, dark_file=str(tmp_path / "dark.npy"))
    assert np.allclose(
        load_measured_psf(tmp_path / "psf.npy", 4.0, 64, options=opts), clean, atol=1e-6
    )


def load_measured_psf_array(tmp_path, image, pitch, **options):
    np.save(tmp_path / "a.npy", image)
    return load_measured_psf(
        tmp_path / "a.npy", pitch, 64, options=MeasurementOptions(pitch, **options)
    )


@pytest.mark.parametrize(
    "kind", ["png8_grey", "png16_grey", "png8_rgb", "tif16_rgb", "tif8", "npz"]
)
def test_formats_and_bit_depths(tmp_path, kind):
    spot = pixel_gaussian(48, 4.0, 5.0, (24, 24))
    scale = 60000 if "16" in kind else 250
    grey = np.round(spot / spot.max() * scale)
    rgb = np.stack([grey, grey, grey], axis=-1)
    if kind == "png8_grey":
        path = write_png(tmp_path / "p.png", grey.astype(np.uint8))
    elif kind == "png16_grey":
        path = write_png(tmp_path / "p.png", grey.astype(np.uint16))
    elif kind == "png8_rgb":
        path = write_png(tmp_path / "p.png", rgb.astype(np.uint8))
    elif kind == "tif16_rgb":
        path = tmp_path / "p.tif"
        tifffile.imwrite(path, rgb.astype(np.uint16))
    elif kind == "tif8":
        path = tmp_path / "p.tiff"
        tifffile.imwrite(path, grey.astype(np.uint8))
    else:
        path = tmp_path / "p.npz"
        np.savez(path, psf=spot[None], pitch_um=4.0)
    image, full_scale, stored_pitch, *_ = read_psf_file(path)
    assert image.shape[0] == (3 if "rgb" in kind else 1)
    assert full_scale == {"png16_grey": 65535, "tif16_rgb": 65535, "npz": None}.get(kind, 255)
    assert stored_pitch == (4.0 if kind == "npz" else None)
    psf = load_measured_psf(path, 4.0, 48, options=MeasurementOptions(4.0, border_px=2))
    expected = spot / spot.sum()
    tol = 0.01 if "16" in kind or kind == "npz" else 0.03  # 8 bit: quantisation of the tails
    assert np.abs(psf - expected).max() < tol * expected.max()


def test_one_file_per_wavelength(tmp_path):
    files = []
    for i, sigma in enumerate((4.0, 5.0, 6.0)):
        files.append(str(tmp_path / f"psf_{i}.npy"))
        np.save(files[-1], pixel_gaussian(48, 4.0, sigma, (24, 24)))
    psf = load_measured_psf(files, 4.0, 48, (1, 3), MeasurementOptions(4.0))
    assert psf.shape == (3, 48, 48)
    assert psf[0].max() > psf[1].max() > psf[2].max()  # narrowest first


def test_measured_camera_keeps_its_psf_in_the_checkpoint(tmp_path):
    spot = pixel_gaussian(64, 4.0, 6.0, (32.4, 31.8))
    np.save(tmp_path / "bench.npy", spot)
    camera = Camera(
        {"preset": "measured", "psf_file": str(tmp_path / "bench.npy"), "psf_pitch_um": 4.0,
         "psf_size_px": 32, "sensor_pitch_um": 4.0}
    )  # fmt: skip
    psf = camera.psf()
    assert psf.shape == (1, 32, 32) and not list(camera.parameters())
    captured = camera(torch.rand(2, 3, 32, 32))
    assert captured.shape == (2, 3, 32, 32)
    save_camera(camera, tmp_path / "camera.pt")
    (tmp_path / "bench.npy").unlink()  # the file is gone: the checkpoint carries the PSF
    assert torch.equal(load_camera(tmp_path / "camera.pt").psf(), psf)
    with pytest.raises(FileNotFoundError, match=r"bench.npy does not exist.*psf_file"):
        Camera(camera.config).psf()


def test_measured_preset_needs_a_file():
    with pytest.raises(ValueError, match="preset 'measured' needs psf_file"):
        Camera("measured")


def png16_rgb(path: Path, image: np.ndarray) -> Path:
    """A 16-bit RGB PNG written by hand (pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    h, w, _ = image.shape
    rows = b"".join(b"\x00" + image[r].astype(">u2").tobytes() for r in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip
    return path


def _spot(n=48):
    return pixel_gaussian(n, 4.0, 5.0, (n // 2, n // 2))


@pytest.mark.parametrize(
    ("make", "options", "match"),
    [
        (lambda d: d / "missing.png", {}, "missing.png does not exist"),
        (lambda d: d, {}, "is a directory"),
        (lambda d: _bytes(d / "bad.png", b"not a png"), {}, "cannot read PSF file .*bad.png"),
        (lambda d: _bytes(d / "p.jpg", b"x"), {}, "unsupported format '.jpg'"),
        (lambda d: _npy(d / "z.npy", np.zeros((48, 48))), {}, "all zero or negative"),
        (lambda d: _npy(d / "n.npy", np.full((48, 48), np.nan)), {}, "NaN"),
        (lambda d: _npy(d / "neg.npy", _spot()), {"dark": 1.0}, "all zero or negative"),
        (lambda d: _npy(d / "two.npy", np.stack([_spot(), _spot()])), {}, "2 channel"),
        (lambda d: _npy(d / "big.npy", pixel_gaussian(96, 4.0, 40.0, (48, 48))), {}, "larger than"),
        (lambda d: _npy(d / "s.npy", _spot()), {"pitch": 20.0}, "upsampling"),
        (lambda d: _npy(d / "s.npy", _spot()), {"pitch": None}, "pitch is unknown"),
        (lambda d: write_png(d / "sat.png", np.full((48, 48), 255, np.uint8)), {}, "scale 255"),
        (lambda d: png16_rgb(d / "c.png", np.ones((48, 48, 3)) * 5), {}, "16-bit colour PNG"),
    ],
)  # fmt: skip
def test_bad_psf_files_are_named_with_the_fix(tmp_path, make, options, match):
    path = make(tmp_path)
    dark = None
    if "dark" in options:  # a dark frame brighter than the measurement
        dark = str(_npy(tmp_path / "dark.npy", np.full((48, 48), options["dark"])))
    opts = MeasurementOptions(options.get("pitch", 4.0), dark_file=dark)
    with pytest.raises((ValueError, FileNotFoundError), match=match) as err:
        load_measured_psf(path, 4.0, 32, (1, 3), opts)
    assert "\n" not in str(err.value)


def test_saturation_can_be_allowed_and_the_level_given(tmp_path):
    image = np.round(_spot() / _spot().max() * 4095).astype(np.uint16)  # 12 bit in 16
    np.save(tmp_path / "s.npy", image)
    load_measured_psf(tmp_path / "s.npy", 4.0, 32, options=MeasurementOptions(4.0))  # 65535: fine
    with pytest.raises(ValueError, match="full scale 4095"):
        load_measured_psf(
            tmp_path / "s.npy", 4.0, 32, options=MeasurementOptions(4.0, saturation_level=4095)
        )
    opts = MeasurementOptions(4.0, saturation_level=4095, allow_saturated=True)
    assert load_measured_psf(tmp_path / "s.npy", 4.0, 32, options=opts).shape == (1, 32, 32)


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path

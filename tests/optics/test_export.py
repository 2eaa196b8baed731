"""Lens export for fabrication: file formats read back independently, physics of the report's
figures of merit, Monte-Carlo tolerance and bad input (optics/export.py, optics/fabrication.py)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from scipy.optimize import brentq
from scipy.special import j0, j1

from optics import Camera, save_camera
from optics import export as export_mod
from optics import fabrication as fab
from optics.export import ProcessLimits, export_lens, load_lens_json, main, zemax
from optics.zernike import zernike_basis

COEFFS = {4: 0.15, 5: 0.3, 7: 0.2, 8: -0.1, 11: 0.1, 14: 0.05}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, small_lens_kwargs):
    """One full export (figures, Monte Carlo) of an asymmetric small lens, shared by the tests."""
    camera = Camera("privacy", initial_coefficients_um=COEFFS, **small_lens_kwargs)
    out = tmp_path_factory.mktemp("export") / "lens1"
    summary = export_lens(camera, out, levels=(4, 16, 256), monte_carlo=3, seed=1)
    return camera, out, summary


# --------------------------------------------------------------------------- independent readers


def read_grid_sag(path):
    """Minimal Grid Sag reader: header ``nx ny delx dely unitflag xdec ydec`` then nx·ny rows
    ``z dz/dx dz/dy d2z/dxdy nodata`` from the upper-left corner (−x, +y), rows downwards."""
    lines = Path(path).read_text().splitlines()
    head = lines[0].split()
    nx, ny, unit = int(head[0]), int(head[1]), int(head[4])
    delx, dely, xdec, ydec = (float(head[i]) for i in (2, 3, 5, 6))
    rows = np.array([[float(v) for v in line.split()] for line in lines[1:] if line.strip()])
    assert rows.shape == (nx * ny, 5)
    grid = rows.reshape(ny, nx, 5)
    x = (np.arange(nx) - (nx - 1) / 2) * delx + xdec  # OpticStudio: grid centred on the vertex
    y = ((ny - 1) / 2 - np.arange(ny)) * dely + ydec  # first row = +y
    return dict(grid=grid, x=x, y=y, unit=unit, delx=delx, dely=dely)


def read_zernike_standard_sag(path):
    values = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, value = line.split()
        values[key] = float(value)
    terms = int(values["number_of_terms"])
    coeffs_mm = np.array([values[f"Z{j}"] for j in range(1, terms + 1)])
    return values["normalization_radius_mm"], values["radius_mm"], values["conic"], coeffs_mm


def pupil_grid_coords(camera):
    lens = camera.lens
    n = lens.pupil_grid
    i = (np.arange(n) - n // 2) * lens.pupil_pitch_um * 1e-3
    return np.meshgrid(i, -i)  # x, y in mm; row 0 = +y


# --------------------------------------------------------------------------- formats


def test_files_and_report(exported):
    camera, out, summary = exported
    names = {p.name for p in out.iterdir()}
    expected = {
        "lens.json", "height_um.npy", "height_um.csv", "height_um.tif", "surface.dat",
        "zernike_standard_sag.txt", "psf_460nm.npy", "psf_550nm.npy", "psf_640nm.npy", "psf.npz",
        "levels_4.png", "levels_4.csv", "levels_16.png", "levels_256.csv", "psf.png",
        "height.png", "mtf.png", "fabrication_error.png", "report.md", "summary.json",
    }  # fmt: skip
    assert expected <= names
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders
    report = (out / "report.md").read_text(encoding="utf-8")
    for text in ("Strehl", "EE50", "peak-to-valley", "maximum slope", "smallest feature",
                 "Monte Carlo", "Grid Sag", "analytic"):  # fmt: skip
        assert text in report
    assert json.loads((out / "summary.json").read_text())["strehl"] == summary["strehl"]
    mc = summary["monte_carlo"]
    assert mc["draws"] == 3 and mc["tolerance_um"] == 0.02
    assert min(mc["strehl_std"]) > 0 and 0.99 < min(mc["correlation_mean"]) < 1
    h = np.load(out / "height_um.npy")
    mask = fab.aperture_mask(camera.lens.pupil_grid)
    assert np.isnan(h[~mask]).all() and np.nanmin(h) == 0
    ref = camera.lens.height_map_um().detach().double().numpy()
    np.testing.assert_allclose(h[mask], ref[mask] - ref[mask].min(), atol=2e-5)
    csv = np.genfromtxt(out / "height_um.csv", delimiter=",")
    np.testing.assert_allclose(csv[mask], h[mask], atol=1e-6)


def test_lens_json_rebuilds_the_camera_exactly(exported):
    camera, out, _ = exported
    doc = json.loads((out / "lens.json").read_text(encoding="utf-8"))
    zern = doc["zernike"]
    assert doc["schema"] == "privcam.lens" and doc["schema_version"] == 2
    assert doc["camera_config"]["lens"]["pupil_grid"] == 64  # version 2: lens options nested
    assert zern["ordering"] == "noll" and zern["normalisation"] == "rms"
    assert zern["normalisation_radius_mm"] == pytest.approx(64 * 4.0 / 2 * 1e-3)
    assert zern["coefficients_um"]["5"] == pytest.approx(0.3)
    assert doc["material"]["refractive_index"]["550"] == 1.5
    assert doc["sensor_distance_mm"] == 12.0 and doc["sensor_pitch_um"] == 4.0
    assert doc["height_map"]["tiff_um_per_level"] > 0
    rebuilt = load_lens_json(out / "lens.json")
    assert torch.equal(rebuilt.lens.coefficients_um(), camera.lens.coefficients_um())
    assert rebuilt.lens.trainable_indices == camera.lens.trainable_indices
    for key in ("wavelengths_nm", "pupil_grid", "pupil_pitch_um", "sensor_distance_mm", "material"):
        assert getattr(rebuilt.config.lens, key) == getattr(camera.config.lens, key)
    psf = np.stack([np.load(out / f"psf_{w}nm.npy") for w in (460, 550, 640)])
    with torch.no_grad():
        assert np.array_equal(rebuilt.eval().psf().numpy(), psf)


def test_tiff_records_its_scale(exported):
    _, out, _ = exported
    with tifffile.TiffFile(out / "height_um.tif") as tif:
        levels = tif.asarray()
        info = json.loads(tif.pages[0].description)
    assert levels.dtype == np.uint16
    h = np.load(out / "height_um.npy")
    mask = ~np.isnan(h)
    assert np.abs(levels[mask] * info["um_per_level"] - h[mask]).max() <= info["um_per_level"]
    lens_json = json.loads((out / "lens.json").read_text(encoding="utf-8"))
    assert info["um_per_level"] == pytest.approx(lens_json["height_map"]["tiff_um_per_level"])


def test_grid_sag_round_trip_psf(exported):
    camera, out, _ = exported
    lens = camera.lens
    n = lens.pupil_grid
    g = read_grid_sag(out / "surface.dat")
    assert g["unit"] == 0 and g["grid"].shape == (n + 1, n + 1, 5)
    assert g["delx"] == pytest.approx(lens.pupil_pitch_um * 1e-3)
    # the grid holds the pupil samples (plus one no-data column at +x and row at −y)
    x_mm, y_mm = pupil_grid_coords(camera)
    np.testing.assert_allclose(g["x"][:n], x_mm[0], atol=1e-12)
    np.testing.assert_allclose(g["y"][:n], y_mm[:, 0], atol=1e-12)
    ours = export_mod.read_grid_sag(out / "surface.dat")  # the package's own reader agrees
    assert np.array_equal(ours["z"], g["grid"][..., 0]) and ours["unitflag"] == 0
    z, nodata = g["grid"][:n, :n, 0], g["grid"][:n, :n, 4] == 1
    assert np.array_equal(~nodata, fab.aperture_mask(n))
    assert (g["grid"][n, :, 4] == 1).all() and (g["grid"][:, n, 4] == 1).all()
    assert (z[nodata] == 0).all()
    height_um = np.where(nodata, 0.0, z * 1e3)
    psf = np.stack([np.load(out / f"psf_{w}nm.npy") for w in (460, 550, 640)])
    rebuilt = fab.psf_from_height(lens, height_um).numpy()
    assert fab.psf_correlation(rebuilt, psf).min() > 0.999
    # derivative columns agree with central differences of the sag column (mm/mm)
    full = g["grid"]
    inner = fab.aperture_mask(n)
    inner[1:-1, 1:-1] &= inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] & inner[1:-1, 2:]
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    d = g["delx"]
    zz = full[:n, :n, 0]
    dzdx = (np.roll(zz, -1, 1) - np.roll(zz, 1, 1)) / (2 * d)
    dzdy = (np.roll(zz, 1, 0) - np.roll(zz, -1, 0)) / (2 * d)  # row above = +y
    scale = np.abs(full[:n, :n, 1][inner]).max()
    assert np.abs(dzdx[inner] - full[:n, :n, 1][inner]).max() < 0.02 * scale
    assert np.abs(dzdy[inner] - full[:n, :n, 2][inner]).max() < 0.02 * scale


def test_zernike_standard_sag_round_trip_psf(exported):
    camera, out, _ = exported
    lens = camera.lens
    radius_norm, radius, conic, coeffs_mm = read_zernike_standard_sag(
        out / "zernike_standard_sag.txt"
    )
    assert conic == -1 and radius_norm == pytest.approx(0.128)
    x, y = pupil_grid_coords(camera)
    r2 = x**2 + y**2
    c = 1 / radius
    base = c * r2 / (1 + np.sqrt(1 - (1 + conic) * c**2 * r2))
    rho, theta = np.sqrt(r2) / radius_norm, np.arctan2(y, x)
    sag_mm = base + np.tensordot(coeffs_mm, zernike_basis(len(coeffs_mm), rho, theta), 1)
    psf = np.stack([np.load(out / f"psf_{w}nm.npy") for w in (460, 550, 640)])
    rebuilt = fab.psf_from_height(lens, sag_mm * 1e3).numpy()
    assert fab.psf_correlation(rebuilt, psf).min() > 0.999


def test_grid_sag_orientation(tmp_path, small_lens_kwargs):
    """Tilt towards +x plus coma towards +y (no base lens): the highest glass is in the
    upper-right corner of the file, and every column matches the closed form."""
    a, b = 0.5, 0.3  # µm: Z2 = 2ρcosθ, Z7 = √8(3ρ³ − 2ρ)sinθ
    camera = Camera(
        "privacy", base_lens=False, initial_coefficients_um={2: a, 7: b}, **small_lens_kwargs
    )
    export_lens(camera, tmp_path / "e", levels=(4,), monte_carlo=0, quick=True)
    g = read_grid_sag(tmp_path / "e" / "surface.dat")
    grid = g["grid"]
    assert grid[0, 0, 4] == 1 and g["x"][0] < 0 and g["y"][0] > 0  # first line: (−x, +y)
    z = np.where(grid[..., 4] == 1, np.nan, grid[..., 0])
    row, col = np.unravel_index(np.nanargmax(z), z.shape)
    half = (len(z) - 1) / 2
    assert row < half and col > half  # upper right = (+x, +y)
    row, col = np.unravel_index(np.nanargmin(z), z.shape)
    assert row > half and col < half
    a, b = (float(camera.lens.coefficients_um()[j - 1].detach()) for j in (2, 7))  # float32 values
    r_mm = 0.128
    xx, yy = np.meshgrid(g["x"] / r_mm, g["y"] / r_mm)
    k = math.sqrt(8) * b
    closed = 1e-3 * np.stack(
        [
            2 * a * xx + k * (3 * (xx**2 + yy**2) - 2) * yy,
            (2 * a + k * 6 * xx * yy) / r_mm,
            k * (3 * xx**2 + 9 * yy**2 - 2) / r_mm,
            k * 6 * xx / r_mm**2,
        ],
        -1,
    )
    inside = grid[..., 4] == 0
    np.testing.assert_allclose(grid[inside][:, :4], closed[inside], rtol=1e-9, atol=1e-12)
    # physics: glass thicker at +x and +y bends light towards +x and +y on the sensor (with
    # the base lens, so that the spot stays inside the PSF window)
    focused = Camera("privacy", initial_coefficients_um={2: a, 7: b}, **small_lens_kwargs)
    psf = focused.lens.eval()().detach()[1].numpy()
    rows, cols = np.indices(psf.shape)
    centre = psf.shape[0] // 2
    assert (psf * cols).sum() > centre + 1 and (psf * rows).sum() < centre - 0.5


# --------------------------------------------------------------------------- maths


def test_plain_lens_strehl_airy_encircled_energy_and_tolerance(tmp_path, small_lens_kwargs):
    """Zero coefficients, constant index: the base lens is the aberration-free lens (Strehl 1);
    encircled energy follows the Airy closed form 1 − J0²(v) − J1²(v), v = π D r/(λ z); the
    Monte-Carlo Strehl follows Maréchal, exp(−σ_φ²) with σ_φ = 2π(n−1)·tol/(√3 λ)."""
    camera = Camera("privacy", **small_lens_kwargs)
    s = export_lens(camera, tmp_path / "e", levels=(8,), monte_carlo=3, quick=True)
    for w in ("460", "550", "640"):
        assert s["strehl"][w] == pytest.approx(1.0, abs=1e-4)
        lam_mm, d_mm, z_mm = float(w) * 1e-6, 0.256, 12.0
        for key, frac in (("ee50_um", 0.5), ("ee80_um", 0.8)):
            v = brentq(lambda v, f=frac: 1 - j0(v) ** 2 - j1(v) ** 2 - f, 0.1, 6.0)
            airy_um = v * lam_mm * z_mm / (math.pi * d_mm) * 1e3
            assert s[key][w] == pytest.approx(airy_um, rel=0.06)
    sigma = 2 * math.pi * 0.5 * 0.02 / (math.sqrt(3) * np.array([0.46, 0.55, 0.64]))
    np.testing.assert_allclose(s["monte_carlo"]["strehl_mean"], np.exp(-(sigma**2)), atol=2e-3)
    assert s["smallest_feature_um"] is None  # a plain lens has one extremum only


def test_quantised_maps(exported, tmp_path):
    camera, out, s = exported
    q = s["levels"]
    assert min(q["256"]["psf_correlation"]) > 0.9999
    assert min(q["4"]["psf_correlation"]) < min(q["16"]["psf_correlation"])
    table = np.loadtxt(out / "levels_4.csv", delimiter=",", skiprows=1)
    assert table.shape == (4, 3) and (np.diff(table[:, 2]) > 0).all()
    assert table[-1, 2] == pytest.approx(s["peak_to_valley_um"])
    img = np.asarray(Image.open(out / "levels_4.png"))
    assert img.dtype == np.uint8 and set(np.unique(img)) <= {0, 85, 170, 255}
    # more than 256 levels → 16-bit PNG; wrapped levels stay below one design wave
    s2 = export_lens(camera, tmp_path / "w", levels=(1024, 8), wrap_levels=True, monte_carlo=0,
                     quick=True)  # fmt: skip
    assert np.asarray(Image.open(tmp_path / "w" / "levels_1024.png")).dtype == np.uint16
    period = 0.55 / (1.5 - 1)
    heights = np.loadtxt(tmp_path / "w" / "levels_8.csv", delimiter=",", skiprows=1)[:, 2]
    assert heights.max() < period and s2["levels"]["8"]["step_um"] == pytest.approx(period / 8)


def test_limits_warn(tmp_path, small_lens_kwargs):
    camera = Camera("privacy", initial_coefficients_um=COEFFS, **small_lens_kwargs)
    limits = ProcessLimits(max_sag_um=0.5, max_slope_deg=0.1, min_feature_um=1e4)
    s = export_lens(camera, tmp_path / "e", levels=(4,), monte_carlo=0, quick=True, limits=limits)
    text = " ".join(s["warnings"])
    assert "--max-sag-um" in text and "--max-slope-deg" in text and "--min-feature-um" in text
    assert "--max-sag-um" in (tmp_path / "e" / "report.md").read_text(encoding="utf-8")
    save_camera(camera, tmp_path / "cam.pt")
    args = ["--ckpt", str(tmp_path / "cam.pt"), "--out", str(tmp_path / "f"), "--quick",
            "--levels", "4", "--monte-carlo", "0", "--max-sag-um", "none",
            "--max-slope-deg", "0.1", "--min-feature-um", "off"]  # fmt: skip
    assert main(args) == 0
    warnings = json.loads((tmp_path / "f" / "summary.json").read_text())["warnings"]
    assert len(warnings) == 1 and "--max-slope-deg" in warnings[0]


# --------------------------------------------------------------------------- CLI and bad input


def _lightning_ckpt(camera, path):
    torch.save(
        {
            "hyper_parameters": {"camera": camera.config.to_dict()},
            "state_dict": {f"camera.{k}": v for k, v in camera.state_dict().items()},
        },
        path,
    )


def test_cli_from_checkpoint_and_coefficients(tmp_path, capsys, small_lens_kwargs):
    camera = Camera("privacy", initial_coefficients_um=COEFFS, **small_lens_kwargs)
    _lightning_ckpt(camera, tmp_path / "best.ckpt")
    args = ["--levels", "4", "--monte-carlo", "0", "--quick"]
    assert main(["--ckpt", str(tmp_path / "best.ckpt"), "--out", str(tmp_path / "a"), *args]) == 0
    assert "Strehl" in capsys.readouterr().out
    lens_json = tmp_path / "a" / "lens.json"
    assert main(["--coefficients", str(lens_json), "--out", str(tmp_path / "b"), *args]) == 0
    for w in (460, 550, 640):
        a = np.load(tmp_path / "a" / f"psf_{w}nm.npy")
        assert np.array_equal(a, np.load(tmp_path / "b" / f"psf_{w}nm.npy"))


def _assert_nothing_written(parent, name):
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_checkpoint_without_lens_is_refused(tmp_path, capsys):
    save_camera(Camera("ideal"), tmp_path / "ideal.pt")
    assert main(["--ckpt", str(tmp_path / "ideal.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "without a lens" in capsys.readouterr().err
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "none.ckpt")
    assert main(["--ckpt", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "o")]) == 2
    assert "holds no camera" in capsys.readouterr().err
    assert main(["--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    _assert_nothing_written(tmp_path, "o")
    with pytest.raises(ValueError, match="without a lens"):
        export_lens(Camera("lowres"), tmp_path / "o")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 99}, "unsupported schema_version 99"),
        ({"schema": "something"}, "not a privcam lens file"),
        ({"zernike": {"ordering": "ansi", "normalisation": "rms", "coefficients_um": {}}},
         "ordering 'ansi'"),
        ({"zernike": {"ordering": "noll", "normalisation": "peak", "coefficients_um": {}}},
         "normalisation 'peak'"),
    ],
)  # fmt: skip
def test_bad_coefficients_file(exported, tmp_path, capsys, change, message):
    _, out, _ = exported
    doc = json.loads((out / "lens.json").read_text(encoding="utf-8"))
    doc.update(change)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_lens_json(bad)
    assert main(["--coefficients", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    _assert_nothing_written(tmp_path, "o")


@pytest.mark.parametrize("version", [1, 2])
def test_hand_written_coefficients_file(tmp_path, small_lens_kwargs, version):
    """Version 1 files hold the lens options flat in camera_config, version 2 under lens."""
    config = {"preset": "privacy", **small_lens_kwargs}
    if version == 2:
        config = {"preset": "privacy", "lens": dict(small_lens_kwargs)}
    doc = {
        "schema": "privcam.lens",
        "schema_version": version,
        "zernike": {"ordering": "Noll", "normalisation": "rms", "coefficients_um": {"5": 0.2}},
        "camera_config": config,
    }
    (tmp_path / "c.json").write_text(json.dumps(doc), encoding="utf-8")
    camera = load_lens_json(tmp_path / "c.json")
    assert float(camera.lens.coefficients_um()[4].detach()) == pytest.approx(0.2)
    doc["zernike"]["normalisation_radius_mm"] = 1.0
    (tmp_path / "c.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match="normalisation_radius_mm"):
        load_lens_json(tmp_path / "c.json")


def test_existing_output_needs_overwrite(tmp_path, capsys, small_lens_kwargs):
    camera = Camera("privacy", initial_coefficients_um=COEFFS, **small_lens_kwargs)
    save_camera(camera, tmp_path / "cam.pt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    args = ["--ckpt", str(tmp_path / "cam.pt"), "--out", str(out), "--levels", "4",
            "--monte-carlo", "0", "--quick"]  # fmt: skip
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "old.txt").exists() and not (out / "lens.json").exists()
    # issue 14 (5): --overwrite never replaces a folder that an export did not write
    assert main([*args, "--overwrite"]) == 2
    assert "not written by optics.export" in capsys.readouterr().err
    assert (out / "old.txt").read_text() == "keep me"
    (out / "old.txt").unlink()
    out.rmdir()
    assert main(args) == 0
    (out / "lens.json").write_text("edited")
    assert main([*args, "--overwrite"]) == 0  # an earlier export is replaced
    assert (out / "lens.json").read_text() != "edited"
    (out / "notes.txt").write_text("mine")  # ... unless it also holds the user's files
    assert main([*args, "--overwrite"]) == 2
    assert "notes.txt" in capsys.readouterr().err and (out / "notes.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failure_leaves_nothing_half_written(tmp_path, monkeypatch, small_lens_kwargs):
    camera = Camera("privacy", initial_coefficients_um=COEFFS, **small_lens_kwargs)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(zemax, "write_zernike_standard_sag", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export_lens(camera, tmp_path / "o", levels=(4,), monte_carlo=0, quick=True)
    _assert_nothing_written(tmp_path, "o")
    # an existing export survives a failed --overwrite untouched
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "lens.json").write_text("{}")
    (tmp_path / "o" / export_mod.MARKER).write_text('{"files": ["lens.json"]}')  # an export's
    with pytest.raises(RuntimeError, match="disk full"):
        export_lens(camera, tmp_path / "o", levels=(4,), quick=True, overwrite=True)
    assert (tmp_path / "o" / "lens.json").read_text() == "{}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_module_entry_point_reports_errors(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "optics.export", "--coefficients", str(tmp_path / "nope.json"),
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "nope.json does not exist" in result.stderr

"""``evaluate.py attack`` on the measured preset, and --attacker-psf (threat models)."""

import json

import numpy as np


def _wiener_ssim(out) -> float:
    rows = json.loads((out / "attack_results.json").read_text())["rows"]
    return next(r["ssim"]["mean"] for r in rows if r["name"] == "wiener")


def _attack(tmp_path, name, *extra):
    from evaluate import main

    out = tmp_path / name
    argv = ["attack", "--images", "embedded", "--max-images", "9", "--image-size", "32",
            "--attack", "wiener", "--no-faces", "--out", str(out), *extra]  # fmt: skip
    return main(argv), out


def _gaussian(sigma_px: float, shift_px: float = 0.0) -> np.ndarray:
    yy, xx = np.mgrid[-16:16, -16:16]
    return np.exp(-((xx - shift_px) ** 2 + yy**2) / (2 * sigma_px**2))[None]


def test_measured_camera_attacked_with_its_own_and_with_a_wrong_psf(tmp_path):
    # the bench measured a mild blur (Wiener undoes much of it); the PSF is stored off-centre
    # (the reader centres it on its centroid)
    np.savez(tmp_path / "psf.npz", psf=_gaussian(1.5, 2.3), pitch_um=8.0)
    psf_file = f"psf_file={tmp_path / 'psf.npz'}"
    measured = ["--camera", "measured", "--camera-option", psf_file, "--camera-option",
                "sensor_pitch_um=8", "--camera-option", "psf_size_px=32"]  # fmt: skip
    rc, exact = _attack(tmp_path, "exact", *measured)
    assert rc == 0
    saved = json.loads((exact / "attack_results.json").read_text())
    assert saved["settings"]["camera"]["preset"] == "measured"
    assert saved["settings"]["attacker_psf"] is None
    assert _wiener_ssim(exact) > saved["rows"][1]["ssim"]["mean"] + 0.05  # beats the capture
    # the attacker believes in a wrong PSF (twice as wide): its Wiener attack gets worse
    np.savez(tmp_path / "wrong.npz", psf=_gaussian(3.0), pitch_um=8.0)
    rc, other = _attack(tmp_path, "other", *measured, "--attacker-psf", str(tmp_path / "wrong.npz"))
    assert rc == 0
    saved = json.loads((other / "attack_results.json").read_text())
    assert saved["settings"]["attacker_psf"].endswith("wrong.npz")
    assert "not the camera's" in (other / "attack_report.md").read_text()
    assert _wiener_ssim(other) < _wiener_ssim(exact) - 0.02
    # the camera's own PSF given as the attacker's: the same attack as without the option
    rc, same = _attack(tmp_path, "same", *measured, "--attacker-psf", str(tmp_path / "psf.npz"))
    assert rc == 0 and abs(_wiener_ssim(same) - _wiener_ssim(exact)) < 1e-3


def test_attacker_psf_errors_are_one_line(tmp_path, capsys):
    rc, _ = _attack(tmp_path, "x", "--camera", "ideal", "--attacker-psf", str(tmp_path / "a.npz"))
    assert rc == 2 and "camera has no lens" in capsys.readouterr().err
    rc, _ = _attack(
        tmp_path, "y", "--camera", "privacy", "--camera-option", "pupil_grid=64",
        "--camera-option", "pupil_pitch_um=4", "--camera-option", "pad_factor=8",
        "--camera-option", "sensor_distance_mm=12", "--camera-option", "num_zernike=15",
        "--camera-option", "sensor_pitch_um=8", "--attacker-psf", str(tmp_path / "none.npz"),
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "--attacker-psf: PSF file" in err and "none.npz does not exist" in err
    rc, _ = _attack(tmp_path, "z", "--camera", "measured")
    assert rc == 2 and "needs psf_file" in capsys.readouterr().err

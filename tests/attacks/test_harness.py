"""End to end: run_attacks and the ``evaluate.py attack`` subcommand on tiny inputs."""

import json

import pytest

from attacks.harness import expand_attacks, run_attacks


def test_ideal_camera_is_trivially_attacked(tmp_path):
    from optics import Camera

    result = run_attacks(
        Camera("ideal"),
        "embedded",
        tmp_path,
        "wiener,richardson_lucy",
        image_size=32,
        max_images=9,
        max_reference_images=2,
        detect_faces=False,
    )
    rows = {r["name"]: r for r in result["rows"]}
    assert rows["captured"]["ssim"]["mean"] > 0.85  # only sensor noise
    assert rows["wiener"]["ssim"]["mean"] > 0.85
    assert rows["richardson_lucy"]["n"] == 2
    assert "delta PSF" in result["notes"][0]
    assert result["settings"]["max_phase_step_rad"] is None  # no lens to alias
    for key in ("report", "json"):
        assert (tmp_path / f"attack_{'report.md' if key == 'report' else 'results.json'}").is_file()
    assert (tmp_path / "attack_grid.png").is_file()
    assert (tmp_path / "pairs" / "train" / "capture" / "000000.png").is_file()


def test_privacy_lens_attacks_and_report(tmp_path, small_camera):
    result = run_attacks(
        small_camera,
        "embedded",
        tmp_path,
        "wiener,wiener_exact,wiener_unet",
        image_size=32,
        max_images=9,
        detect_faces=False,
        seed=1,
        epochs=1,
        attacker_options={"wiener_unet": {"base_channels": 4, "depth": 2}},
    )
    rows = {r["name"]: r for r in result["rows"]}
    assert rows["wiener"]["ssim"]["mean"] > rows["captured"]["ssim"]["mean"]
    assert rows["wiener"]["beats_identity"] is True
    assert rows["wiener"]["identity_ssim"] == pytest.approx(rows["captured"]["ssim"]["mean"])
    assert "captured" not in [r["name"] for r in result["rows"] if "beats_identity" in r]
    # the non-blind learned attacker starts from the attacker's own Wiener K
    assert result["learned"]["wiener_unet"]["kind"] == "wiener_unet"
    assert rows["wiener_unet"]["converged"] is None  # 6 pairs: nothing held out
    assert rows["wiener_oracle"]["ssim"]["mean"] >= rows["wiener"]["ssim"]["mean"] - 1e-6
    saved = json.loads((tmp_path / "attack_results.json").read_text())
    assert saved["settings"]["psf_shape"] == [3, 32, 32]
    assert saved["settings"]["train_pairs"] == 6 and saved["settings"]["test_pairs"] == 3
    exact = saved["k"]["wiener_exact"]  # swept three per decade on every train pair up to 16
    assert exact["images"] == 6 and len(exact["ks"]) == 13
    assert exact["ks"][3] == pytest.approx(1e-4) and exact["k"] in exact["ks"]
    assert "| Wiener, constant K" in (tmp_path / "attack_report.md").read_text()


def test_psf_larger_than_images_is_a_clear_error(tmp_path, small_camera):
    with pytest.raises(ValueError, match=r"PSF of 32×32 px is larger than the 16×16.*--image-size"):
        run_attacks(
            small_camera,
            "embedded",
            tmp_path,
            "wiener",
            image_size=16,
            max_images=4,
            detect_faces=False,
        )


def test_attack_names():
    assert expand_attacks("all")[0] == "wiener"
    assert expand_attacks("unet, wiener") == ["wiener", "unet"]
    with pytest.raises(ValueError, match=r"unknown attack\(s\) \['blur'\]"):
        expand_attacks("blur")


def test_non_converged_attacker_is_flagged_and_strength_curve(tmp_path):
    import numpy as np

    from attacks.pairs import PairSet
    from optics import Camera

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (18, 16, 16, 3), dtype=np.uint8)
    pairs = PairSet(
        img, img.copy(), np.arange(12), np.arange(12, 18), [f"{i}" for i in range(18)]
    )  # capture = original: nothing to undo
    result = run_attacks(
        Camera("ideal"),
        pairs,
        tmp_path,
        "unet",
        image_size=16,
        epochs=1,
        batch_size=4,
        attacker_options={"unet": {"base_channels": 8, "depth": 2}},
        detect_faces=False,
        strength_curve="6,all",
    )
    row = next(r for r in result["rows"] if r["name"] == "unet")
    assert row["converged"] is False and "did not converge" in row["label"]
    report = (tmp_path / "attack_report.md").read_text()
    assert "**did not converge**" in report and "Attacker strength curve (unet)" in report
    # below the capture on the test images too: marked, with the capture's SSIM named
    assert row["beats_identity"] is False and row["identity_ssim"] == pytest.approx(1.0)
    assert (
        " ↓ |" in report
        and "↓ below the capture itself on the same images (SSIM unet 1.000)" in report
    )
    assert [p["pairs"] for p in result["strength"]] == [6, 12]
    assert result["strength"][0]["converged"] is None  # 6 pairs: none held out
    assert (tmp_path / "attack_strength.png").is_file()
    saved = json.loads((tmp_path / "attack_results.json").read_text())
    assert saved["learned"]["unet"]["converged"] is False


def test_every_attack_name_has_a_registered_function():
    from attacks.attackers import ATTACKERS
    from attacks.harness import ATTACKS, PUBLISHED
    from attacks.registry import REGISTRY

    assert (
        tuple(REGISTRY)
        == ATTACKS
        == (
            "wiener",
            "wiener_exact",
            "unsupervised_wiener",
            "richardson_lucy",
            "deblurgan",
            "unet",
            "wiener_unet",
        )
    )
    assert set(ATTACKERS) <= set(REGISTRY)
    assert all(REGISTRY[name].__doc__ for name in ATTACKS)
    assert PUBLISHED == {
        "captured": "0.48 ± 0.12",
        "wiener": "0.38 ± 0.10",
        "deblurgan": "0.40 ± 0.11",
    }


def test_in_loop_attacker_is_a_row_and_the_report_says_the_learned_ones_are_fresh(
    tmp_path, small_camera
):
    import torch

    from attacks.adversary import build_attacker, load_in_loop_attacker

    net = build_attacker("wiener_unet", 4, 2)  # starts as the Wiener attack
    hp = {
        "adversary": "wiener_unet",
        "w_adversary": 3.0,
        "adversary_channels": 4,
        "adversary_depth": 2,
        "camera": small_camera.config.to_dict(),
    }
    ckpt = {
        "hyper_parameters": hp,
        "global_step": 10,
        "datamodule_hyper_parameters": {"batch_size": 8},
        "adversary": {"kind": "wiener_unet", "net": net.state_dict(), "updates": 20},
    }
    loaded, info = load_in_loop_attacker(ckpt)
    assert info == {
        "kind": "wiener_unet",
        "w_adversary": 3.0,
        "updates": 20,
        "batch_size": 8,
        "pairs_seen": 160,
        "lens_steps": 10,
    }
    for a, b in zip(loaded.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert load_in_loop_attacker({"hyper_parameters": {"adversary": "none"}}) is None
    with pytest.raises(ValueError, match="no attacker state"):
        load_in_loop_attacker({"hyper_parameters": hp})

    result = run_attacks(
        small_camera,
        "embedded",
        tmp_path,
        "wiener,unet",
        image_size=32,
        max_images=9,
        epochs=1,
        batch_size=4,
        detect_faces=False,
        attacker_options={"unet": {"base_channels": 4, "depth": 2}},
        in_loop=(loaded, info),
    )
    row = next(r for r in result["rows"] if r["name"] == "in_loop")
    assert 0 < row["ssim"]["mean"] <= 1 and "not fresh" in row["label"]
    note = next(n for n in result["notes"] if "in-loop wiener_unet" in n)
    # 6 attacker-train pairs x 1 epoch < the in-loop attacker's 160 pairs: the report says so
    assert "fresh" in note and "raise --max-images or --epochs" in note
    assert "in-loop wiener_unet attacker" in (tmp_path / "attack_report.md").read_text()


def test_camera_and_in_loop_attacker_come_from_one_read_of_the_file(
    tmp_path, small_camera, monkeypatch
):
    """Training checkpoints are ~170 MB: the attack command reads one once for the camera and
    its in-loop attacker, and a caller that read it already (the study) passes it in."""
    import torch

    import optics.camera
    from attacks.adversary import build_attacker, camera_and_in_loop_attacker

    net = build_attacker("unet", 4, 2)
    hp = {
        "adversary": "unet",
        "adversary_channels": 4,
        "adversary_depth": 2,
        "camera": small_camera.config.to_dict(),
    }
    state = {f"camera.{k}": v for k, v in small_camera.state_dict().items()}
    path = tmp_path / "best.ckpt"
    torch.save(
        {
            "hyper_parameters": hp,
            "state_dict": state,
            "adversary": {"kind": "unet", "net": net.state_dict(), "updates": 3},
        },
        path,
    )
    reads = []
    real_load = optics.camera.torch.load
    monkeypatch.setattr(
        optics.camera.torch, "load", lambda *a, **k: reads.append(a[0]) or real_load(*a, **k)
    )
    camera, (_net, info) = camera_and_in_loop_attacker(path)
    assert reads == [path] and info["updates"] == 3
    for a, b in zip(camera.state_dict().values(), small_camera.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    raw = optics.checkpoint_file.read_checkpoint(path)
    reads.clear()
    camera, in_loop = camera_and_in_loop_attacker(path, raw)
    assert reads == [] and in_loop is not None
    # a lens trained without an attacker: the camera, no attacker row
    assert (
        camera_and_in_loop_attacker(path, {**raw, "hyper_parameters": {**hp, "adversary": "none"}})[
            1
        ]
        is None
    )


def test_a_lens_that_aliases_on_its_pupil_grid_is_reported_as_not_physical(tmp_path, small_camera):
    """Training only warns when the optimiser pushes the lens past π per pupil sample; the
    attack report must not then present the aliased PSF's figures as the lens's privacy."""
    import math

    import torch

    def attack(camera, out):
        return run_attacks(camera, "embedded", out, "wiener", image_size=32, max_images=6,
                           max_reference_images=2, detect_faces=False)  # fmt: skip

    fine = attack(small_camera, tmp_path / "fine")
    assert fine["settings"]["max_phase_step_rad"] < math.pi
    assert not any("aliases" in n for n in fine["notes"])
    with torch.no_grad():
        small_camera.lens.trainable_coefficients_um.mul_(4.0)  # 0.4 µm: past π (0.2 aliases)
    aliased = attack(small_camera, tmp_path / "aliased")
    assert aliased["settings"]["max_phase_step_rad"] > math.pi
    assert any("lens aliases on its pupil grid" in n for n in aliased["notes"])
    assert (
        "lens aliases on its pupil grid" in (tmp_path / "aliased" / "attack_report.md").read_text()
    )

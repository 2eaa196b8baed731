"""attacks.attackers: the one registry of learned attackers, and everything that reads it (the
CLI's flags, the harness's attacks and options, training and reloading, the in-loop adversary).
An extra entry (a second U-Net under another name) shows that one entry is all it takes."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from attacks.attackers import (
    ATTACKERS,
    adversary_kinds,
    get_attacker,
    learned_names,
)


def test_the_registry_names_the_published_attackers_and_flags():
    assert learned_names() == ("deblurgan", "unet", "wiener_unet")
    assert [s.flag for s in ATTACKERS.values()] == [
        "--deblurgan-option",
        "--unet-option",
        "--wiener-unet-option",
    ]
    assert [s.dest for s in ATTACKERS.values()] == [
        "deblurgan_option",
        "unet_option",
        "wiener_unet_option",
    ]
    assert adversary_kinds() == ("none", "unet", "wiener_unet")
    for name, spec in ATTACKERS.items():  # the import path resolves to the named class
        cls = spec.lightning_class()
        assert cls.__name__ == spec.class_name and cls.kind == name
    assert [n for n, s in ATTACKERS.items() if s.needs_psf] == ["wiener_unet"]
    assert get_attacker("deblurgan").weights_option == "backbone_weights"
    with pytest.raises(ValueError, match=r"unknown learned attacker 'gan': choose one of \["):
        get_attacker("gan")


def test_an_extra_entry_grows_the_cli(extra_attacker, tmp_path, monkeypatch, capsys):
    from attacks import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    text = parser.format_help()
    assert "--tiny-unet-option KEY=VALUE" in text
    assert "UNetAttacker argument, e.g. depth=2 (repeatable)" in text
    assert "richardson_lucy, deblurgan, unet, wiener_unet, tiny_unet, all" in " ".join(text.split())
    args = cli.parse(["--camera", "ideal", "--tiny-unet-option", "depth=2"])
    assert args.tiny_unet_option == ["depth=2"] and args.unet_option == []
    cfg = tmp_path / "a.yaml"
    cfg.write_text("tiny_unet_option: {base_channels: 4}\n")
    assert cli.parse(["--config", str(cfg)]).tiny_unet_option == {"base_channels": 4}

    seen = {}

    def fake_run_attacks(*args, **kwargs):
        seen.update(kwargs)
        report = tmp_path / "attack_report.md"
        report.write_text("report\n")
        return {"files": {"report": str(report), "json": "j", "figure": "f"}}

    monkeypatch.setattr("attacks.harness.run_attacks", fake_run_attacks)
    argv = ["--camera", "ideal", "--out", str(tmp_path / "out"), "--tiny-unet-option", "depth=2",
            "--unet-option", "base_channels=8"]  # fmt: skip
    assert cli.run(cli.parse(argv)) == 0
    assert seen["attacker_options"] == {
        "deblurgan": {},
        "unet": {"base_channels": 8},
        "wiener_unet": {},
        "tiny_unet": {"depth": 2},
    }
    with pytest.raises(ValueError, match=r"--tiny-unet-option 'depth' is not KEY=VALUE"):
        cli.run(cli.parse([*argv[:4], "--tiny-unet-option", "depth"]))
    capsys.readouterr()


def test_an_extra_entry_is_an_attack_of_the_harness(extra_attacker, tmp_path):
    from attacks.harness import ATTACKS, expand_attacks, run_attacks
    from attacks.pairs import PairSet
    from attacks.registry import REGISTRY
    from attacks.training import load_attacker
    from optics import Camera
    from optics.checkpoint_file import checkpoint_kind, read_checkpoint

    assert ATTACKS[-2:] == ("wiener_unet", "tiny_unet") and expand_attacks("all")[-1] == "tiny_unet"
    assert expand_attacks("tiny_unet,wiener") == ["wiener", "tiny_unet"]
    assert REGISTRY["tiny_unet"].__doc__ == "Learned attacker: Tiny U-Net (attacks.learned)."
    with pytest.raises(ValueError, match=r"unknown learned attacker\(s\) \['gan'\]: .*'tiny_unet'"):
        run_attacks(Camera("ideal"), "embedded", tmp_path, "wiener", attacker_options={"gan": {}})

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (18, 16, 16, 3), dtype=np.uint8)
    pairs = PairSet(img, img.copy(), np.arange(12), np.arange(12, 18), [f"{i}" for i in range(18)])
    result = run_attacks(
        Camera("ideal"),
        pairs,
        tmp_path,
        "tiny_unet",
        image_size=16,
        epochs=1,
        batch_size=4,
        attacker_options={"tiny_unet": {"base_channels": 4, "depth": 2}},
        detect_faces=False,
        strength_curve="6,all",
        strength_attacker="tiny_unet",
    )
    row = next(r for r in result["rows"] if r["name"] == "tiny_unet")
    assert row["label"].startswith("Tiny U-Net, 1 epochs (best 1)")
    assert result["learned"]["tiny_unet"]["kind"] == "tiny_unet"
    assert [p["attacker"] for p in result["strength"]] == ["tiny_unet", "tiny_unet"]
    assert "Tiny U-Net" in (tmp_path / "attack_report.md").read_text()
    ckpt = read_checkpoint(tmp_path / "tiny_unet" / "checkpoints" / "last.ckpt")
    assert checkpoint_kind(ckpt) == "attacker" and ckpt["attacker_kind"] == "tiny_unet"
    assert torch.load(tmp_path / "tiny_unet" / "generator.pt")["kind"] == "tiny_unet"
    net = load_attacker(tmp_path / "tiny_unet" / "generator.pt")
    assert sum(p.numel() for p in net.parameters()) > 0


def test_an_extra_entry_can_be_the_in_loop_adversary(extra_attacker):
    from attacks.adversary import InLoopAdversary, attack_with, build_attacker
    from attacks.models import UNet

    assert adversary_kinds() == ("none", "unet", "wiener_unet", "tiny_unet")
    net = build_attacker("tiny_unet", 4, 2)
    assert isinstance(net, UNet) and net.needs_psf is False
    adversary = InLoopAdversary("tiny_unet", base_channels=4, depth=2)
    x = torch.rand(2, 3, 16, 16)
    assert np.isfinite(adversary.train_step(x, x, None)) and adversary.updates == 1
    assert attack_with(adversary.net, x, None).shape == x.shape
    with pytest.raises(ValueError, match=r"model.adversary must be one of \[.*'tiny_unet'\]"):
        build_attacker("deblurgan")  # registered, but without an in-loop builder


def test_a_non_blind_in_loop_attacker_is_given_the_psf():
    from attacks.adversary import attack_with, build_attacker

    net = build_attacker("wiener_unet", 4, 2)
    assert net.needs_psf is True
    psf = torch.zeros(3, 5, 5)
    psf[:, 2, 2] = 1
    x = torch.rand(1, 3, 16, 16)
    assert attack_with(net, x, psf).shape == x.shape

"""``evaluate.py attack``: options, --config, one-line errors; attacks.cli names it."""

import json

import pytest


def test_cli_subcommand(tmp_path, capsys):
    from evaluate import main

    out = tmp_path / "cli"
    assert (
        main(
            [
                "attack",
                "--camera",
                "ideal",
                "--images",
                "embedded",
                "--max-images",
                "6",
                "--image-size",
                "32",
                "--attack",
                "wiener",
                "--no-faces",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "captured (no attack)" in capsys.readouterr().out
    # bad input: one line "error: ..." on stderr, exit status 2 (tests/test_bad_input.py)
    assert main(["attack", "--out", str(out)]) == 2
    assert "--ckpt CHECKPOINT or --camera PRESET" in capsys.readouterr().err
    images = str(tmp_path / "cli" / "pairs")
    assert main(["attack", "--camera", "ideal", "--images", images, "--out", str(out)]) == 2
    assert "no images in" in capsys.readouterr().err
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("epochz: 3\n")
    assert main(["attack", "--camera", "ideal", "--config", str(cfg)]) == 2
    assert "unknown option 'epochz'" in capsys.readouterr().err


def test_cli_from_a_camera_checkpoint(tmp_path, small_camera):
    from evaluate import main
    from optics import save_camera

    ckpt = tmp_path / "camera.pt"
    save_camera(small_camera, ckpt)
    out = tmp_path / "from_ckpt"
    assert (
        main(
            [
                "attack",
                "--ckpt",
                str(ckpt),
                "--max-images",
                "6",
                "--attack",
                "wiener",
                "--no-faces",
                "--out",
                str(out),
            ]
        )
        == 0
    )  # image size = the PSF size (32)
    saved = json.loads((out / "attack_results.json").read_text())
    assert saved["settings"]["image_size"] == 32


@pytest.mark.parametrize("name", ["attack_embedded.yaml", "attack_coco.yaml"])
def test_shipped_attack_configs_parse(name):
    from pathlib import Path

    from attacks.cli import parse

    config = Path(__file__).resolve().parents[2] / "configs" / name
    args = parse(["--camera", "ideal", "--config", str(config)])
    assert args.attack and args.max_images  # image_size may be left to the lens (null)


def test_command_line_wins_over_config_also_for_repeatable_options(tmp_path):
    from attacks.cli import parse

    cfg = tmp_path / "a.yaml"
    cfg.write_text("epochs: 4\nunet_option: {base_channels: 16}\ndeblurgan_option: {ndf: 32}\n")
    args = parse(["--unet-option", "depth=2", "--config", str(cfg), "--epochs", "2"])
    assert args.epochs == 2 and args.unet_option == ["depth=2"]
    assert args.deblurgan_option == {"ndf": 32} and args.config is None


def test_attacks_cli_module_names_the_one_attack_command(capsys):
    from attacks.cli import main

    assert main(["--camera", "ideal"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python evaluate.py attack" in err


def test_evaluate_attack_applies_its_config_in_one_parse(tmp_path, capsys):
    """evaluate.py attack parses once (attacks.cli.parse: --config files first); run() takes
    parsed options and refuses a namespace that still holds a --config to read."""
    import argparse

    from attacks.cli import attack_options, run
    from evaluate import main

    cfg = tmp_path / "a.yaml"
    cfg.write_text("train_fraction: 1.5\n")
    assert main(["attack", "--camera", "ideal", "--config", str(cfg), "--no-faces"]) == 2
    assert "--train-fraction must be in (0, 1), got 1.5" in capsys.readouterr().err
    args = vars(attack_options(camera="ideal"))
    with pytest.raises(ValueError, match=r"--config a\.yaml is applied by parse"):
        run(argparse.Namespace(**{**args, "config": "a.yaml"}))

"""`evaluate.py study` (endtoend.study) on the tiny data: three stages, resumable, one report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from endtoend.study import StudySettings, run_study

pytestmark = pytest.mark.slow  # trains models: a minute on CPU


def test_study_trains_attacks_reports_and_resumes(
    tiny_cli_args, tiny_data_root, tiny_demo_config, tmp_path
):
    argv = tiny_cli_args(tiny_data_root, tmp_path / "unused", "--trainer.max_epochs", "1",
                         "--model.adversary_channels", "4", "--model.adversary_depth", "2",
                         "--model.adversary_warmup_steps", "1")  # fmt: skip
    config = tiny_demo_config(argv, tmp_path / "demo.yaml")
    settings = StudySettings(
        config=str(config), lenses=("published", "adversary"), references=("lowres",),
        lens_epochs=1, max_images=12,
        epochs=1, attacks="wiener,unet", strength_curve="4,all", strength_attacker="unet",
    )  # fmt: skip
    out = tmp_path / "study"
    text = run_study(out, settings).read_text()

    # the lenses started from the study's own ideal captioner; one was trained min–max
    import torch

    adv = torch.load(out / "adversary" / "checkpoints" / "best.ckpt", weights_only=False)
    assert adv["hyper_parameters"]["adversary"] == "wiener_unet" and "adversary" in adv
    published = torch.load(out / "published" / "checkpoints" / "best.ckpt", weights_only=False)
    assert published["hyper_parameters"]["adversary"] == "none"
    assert published["hyper_parameters"]["w_attack"] == 0
    assert Path(published["hyper_parameters"]["init_from"]).parent.parent == out / "ideal"

    for camera in ("ideal", "blind", "privacy (published)", "privacy (adversary)", "lowres"):
        assert f"| {camera} |" in text
    lowres = torch.load(out / "lowres" / "checkpoints" / "best.ckpt", weights_only=False)
    assert lowres["hyper_parameters"]["camera"]["preset"] == "lowres"  # a reference camera
    assert "| lowres |" in (out / "tradeoff.md").read_text()  # on the frontier
    assert "in-loop (not fresh)" in text and "Wiener (learned K)" in text
    attack_table = text.split("## Attacks")[1].split("##")[0]
    adv_row = next(ln for ln in attack_table.splitlines() if ln.startswith("| privacy (adv"))
    # capture, Wiener (constant, Laplacian), oracle Wiener, U-Net, in-loop: SSIM / PSNR / re-ID
    assert adv_row.count(" / ") == 2 * 6, adv_row
    assert "privacy (adversary), unet: 4 pairs" in text  # the strength curve
    assert "best fresh learned attacker" in text or "none converged" in text
    assert "% of the ideal camera's" in text
    assert (out / "tradeoff.png").stat().st_size > 0 and (out / "tradeoff.csv").is_file()
    results = json.loads((out / "attacks_adversary" / "attack_results.json").read_text())
    assert results["settings"]["train_pairs"] + results["settings"]["test_pairs"] == 12
    ideal = json.loads((out / "attacks_ideal" / "attack_results.json").read_text())
    assert ideal["settings"]["image_size"] == 32  # the data's size, though it has no PSF

    # a rerun reuses every finished stage; changed settings are refused by name
    done = [*out.glob("*/checkpoints/best.ckpt"), *out.glob("attacks_*/attack_results.json")]
    assert len(done) == 5 + 4
    stamps = {p: p.stat().st_mtime_ns for p in done}
    run_study(out, settings)
    assert {p: p.stat().st_mtime_ns for p in done} == stamps
    settings.attacks = "unet"  # fewer attacks than were run: the run serves
    run_study(out, settings)
    assert {p: p.stat().st_mtime_ns for p in done} == stamps
    settings.epochs = 2
    captioned = (out / "comparison.csv").stat().st_mtime_ns
    with pytest.raises(ValueError, match=r"attacks_ideal holds an attack run made with other"):
        run_study(out, settings)
    assert (out / "comparison.csv").stat().st_mtime_ns == captioned  # refused before captions
    settings.epochs = 1
    # markers name configs and checkpoints by content: a lens rewritten at the same path
    # (retrained after its folder was removed) is not judged by the old lens's attacks ...
    lens = out / "published" / "checkpoints" / "best.ckpt"
    torch.save({**published, "global_step": published["global_step"] + 1}, lens)
    with pytest.raises(ValueError, match=r"attacks_published holds .*ckpt_sha"):
        run_study(out, settings)
    # ... and an edited config does not reuse what the old one trained
    config.write_text(config.read_text() + "\n# edited\n")
    with pytest.raises(ValueError, match=r"ideal holds the ideal captioner .*config_sha"):
        run_study(out, settings)

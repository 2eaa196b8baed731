"""`make demo`'s job (evaluate.run_demo) on the tiny data: report written, reruns replace."""

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # trains models: minutes on CPU


def test_demo_writes_report_and_reruns_cleanly(
    tiny_cli_args, tiny_data_root, tiny_demo_config, tmp_path
):
    from evaluate import run_demo

    argv = tiny_cli_args(tiny_data_root, tmp_path / "unused", "--model.log_images", "2")
    config = tiny_demo_config(argv, tmp_path / "demo.yaml")
    out = tmp_path / "demo"
    cameras = ["privacy", "blind", "ideal"]
    for _ in range(2):  # the second run replaces the first instead of adding best-v1.ckpt
        report = run_demo(
            out, str(config), cameras, max_epochs=1, attacks=False, export=False, lens_epochs=1
        )
    assert sorted(p.name for p in (out / "privacy" / "checkpoints").iterdir()) == [
        "best.ckpt",
        "last.ckpt",
    ]
    assert len(list((out / "privacy").glob("version_*"))) == 1
    text = Path(report).read_text()
    for camera in cameras:
        assert f"| {camera} |" in text
    assert "grounding F1" in text and "colour P" in text
    assert "Machine: " in text and "torch CPU kernels" in text  # what a rerun must match
    # shape F1 is a table column (not only named in the intro), right after shape R
    header = next(ln for ln in text.splitlines() if ln.startswith("| camera | B-1 |"))
    assert "| shape R | shape F1 | colour P |" in header
    # the lens preset started from the ideal camera's captioner; the blind one from scratch
    hparams = torch.load(out / "privacy" / "checkpoints" / "best.ckpt", weights_only=False)[
        "hyper_parameters"
    ]
    assert Path(hparams["init_from"]).parent.parent == out / "ideal"
    blind = torch.load(out / "blind" / "checkpoints" / "best.ckpt", weights_only=False)
    assert blind["hyper_parameters"]["blind"] and not blind["hyper_parameters"]["init_from"]

"""`make demo`'s job (evaluate.run_demo) on the tiny data: report written, reruns replace."""

from pathlib import Path

import pytest
import torch
import yaml

pytestmark = pytest.mark.slow  # trains models: minutes on CPU

DEMO_YAML = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def _tiny_demo_config(argv: list[str], path: Path) -> Path:
    """configs/demo.yaml with the tiny run's CLI overrides (``tiny_cli_args``) written in."""
    config = yaml.safe_load(DEMO_YAML.read_text())
    overrides = argv[2:]  # past "--config demo.yaml"
    for key, value in zip(overrides[::2], overrides[1::2], strict=True):
        *parents, leaf = key.removeprefix("--").split(".")
        node = config
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(config))
    return path


def test_demo_writes_report_and_reruns_cleanly(tiny_cli_args, tiny_data_root, tmp_path):
    from evaluate import run_demo

    argv = tiny_cli_args(tiny_data_root, tmp_path / "unused", "--model.log_images", "2")
    config = _tiny_demo_config(argv, tmp_path / "demo.yaml")
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
    # the lens preset started from the ideal camera's captioner; the blind one from scratch
    hparams = torch.load(out / "privacy" / "checkpoints" / "best.ckpt", weights_only=False)[
        "hyper_parameters"
    ]
    assert Path(hparams["init_from"]).parent.parent == out / "ideal"
    blind = torch.load(out / "blind" / "checkpoints" / "best.ckpt", weights_only=False)
    assert blind["hyper_parameters"]["blind"] and not blind["hyper_parameters"]["init_from"]

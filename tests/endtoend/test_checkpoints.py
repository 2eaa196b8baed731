"""One checkpoint format: training checkpoints are read, every other kind is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from captioning.model import Captioner, CaptionerConfig
from endtoend.checkpoints import (
    camera_name,
    check_ckpt_path,
    load_captioner_weights,
    training_checkpoint,
)


def _save(path: Path, payload: dict) -> Path:
    torch.save(payload, path)
    return path


def test_training_checkpoint_and_camera_name(tmp_path) -> None:
    hparams = {"camera": {"preset": "defocus"}}
    ckpt = _save(tmp_path / "best.ckpt", {"hyper_parameters": hparams, "state_dict": {}})
    raw = training_checkpoint(ckpt)
    assert camera_name(raw["hyper_parameters"]) == "defocus"
    assert camera_name({"camera": {"preset": "ideal"}, "blind": True}) == "blind"


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        ({"model_config": {}, "state_dict": {}, "vocab": {}}, "captioner-only checkpoint"),
        ({"kind": "unet", "hparams": {}, "state_dict": {}}, "attacker checkpoint"),
        ({"camera_config": {}, "state_dict": {}}, "camera file"),
        ({"weights": 1}, "not a privcam checkpoint"),
    ],
)
def test_other_kinds_are_refused_by_name(tmp_path, payload, names) -> None:
    path = _save(tmp_path / "x.ckpt", payload)
    with pytest.raises(ValueError, match=names):
        training_checkpoint(path)
    with pytest.raises(ValueError, match="--ckpt_path"):
        check_ckpt_path(["fit", "--ckpt_path", str(path)])


def test_ckpt_path_keywords_are_left_to_lightning(tmp_path) -> None:
    check_ckpt_path(["fit", "--ckpt_path", "last", "--ckpt_path=best", "--ckpt_path", "registry:x"])
    with pytest.raises(OSError, match="--ckpt_path"):
        check_ckpt_path(["fit", f"--ckpt_path={tmp_path / 'missing.ckpt'}"])


def test_captioner_weights_from_a_training_checkpoint(tmp_path) -> None:
    config = CaptionerConfig(vocab_size=9, backbone="resnet18", embed_dim=8, hidden_dim=8,
                             attention_dim=4)  # fmt: skip
    trained, fresh = Captioner(config), Captioner(config)
    state = {f"captioner.{k}": v for k, v in trained.state_dict().items()}
    ckpt = _save(tmp_path / "last.ckpt", {"state_dict": state})
    load_captioner_weights(fresh, ckpt)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, trained.state_dict()[key]), key
    empty = _save(tmp_path / "other.ckpt", {"state_dict": {"camera.x": torch.zeros(1)}})
    with pytest.raises(ValueError, match="holds no captioner weights"):
        load_captioner_weights(fresh, empty)

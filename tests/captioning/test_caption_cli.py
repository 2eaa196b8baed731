"""CLIs: train_captioner (ideal and blind) and `evaluate.py caption`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import evaluate
from captioning.train_captioner import main as train_main
from captioning.vocab import Vocabulary

TINY = [
    "--backbone",
    "resnet18",
    "--image-size",
    "32",
    "--embed-dim",
    "16",
    "--hidden-dim",
    "16",
    "--attention-dim",
    "8",
    "--min-count",
    "1",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--threads",
    "2",
]


@pytest.fixture(scope="module")
def data_root(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "data"
    shutil.copytree(synthetic_root, root)
    return root


def test_train_and_caption_one_image(data_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert train_main(["--data", str(data_root), "--out", str(out), *TINY]) == 0
    ckpt = torch.load(out / "captioner.pt", weights_only=True)
    assert {"model_config", "state_dict", "vocab"} <= set(ckpt)
    metrics = json.loads((out / "test_metrics.json").read_text())["metrics"]
    assert {"BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"} <= set(metrics)
    results = json.loads((out / "test_results.json").read_text())
    assert len(results) == 6 and set(results[0]) == {"image_id", "caption"}
    assert (data_root / "prepared_32" / "train_images.npy").is_file()
    capsys.readouterr()
    image = data_root / "images" / "test_000000.png"
    assert (
        evaluate.main(["caption", "--ckpt", str(out / "captioner.pt"), "--image", str(image)]) == 0
    )
    caption = capsys.readouterr().out.strip()
    vocab = Vocabulary.from_dict(ckpt["vocab"])
    assert caption and all(w in vocab.stoi for w in caption.split())


def test_blind_baseline_run(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "blind"
    assert (
        train_main(["--data", str(data_root), "--out", str(out), "--blind", "--skip-test", *TINY])
        == 0
    )
    ckpt = torch.load(out / "captioner.pt", weights_only=True)
    assert ckpt["blind"] is True
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and history[0]["loss"] > 0

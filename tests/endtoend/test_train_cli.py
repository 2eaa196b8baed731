"""The captioner alone through the one trainer (`train.py` with the ideal camera, and blind),
then `evaluate.py captions` / `caption` on its checkpoint."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

import evaluate
from captioning.vocab import Vocabulary
from endtoend.train_cli import cli_main

pytestmark = pytest.mark.slow  # two short fits through the CLI

SHORT = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")


def test_ideal_camera_trains_the_captioner_and_captions(
    tiny_cli_args, tiny_data_root: Path, tmp_path: Path, capsys
) -> None:
    cli = cli_main(
        ["fit", *tiny_cli_args(tiny_data_root, tmp_path, "--model.camera.preset", "ideal", *SHORT)]
    )
    ckpt_path = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    assert {"state_dict", "vocab", "captioner_config", "hyper_parameters"} <= set(ckpt)
    assert ckpt["hyper_parameters"]["camera"]["preset"] == "ideal"
    assert cli.model.camera.lens is None  # no optics: nothing but the captioner learns
    assert (tiny_data_root / "prepared_32" / "train_images.npy").is_file()
    result = evaluate.evaluate_captions(ckpt_path, "test", beam=2, out_dir=tmp_path / "ev")
    assert {"BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"} <= set(result["metrics"])
    assert result["camera"] == "ideal" and result["metrics"]["num_images"] == 10
    assert (tmp_path / "ev" / "captions_test_results.json").is_file()
    capsys.readouterr()
    image = tiny_data_root / "images" / "test_000000.png"
    assert evaluate.main(["caption", "--ckpt", str(ckpt_path), "--image", str(image)]) == 0
    caption = capsys.readouterr().out.strip()
    vocab = Vocabulary.from_dict(ckpt["vocab"])
    assert caption and all(w in vocab.stoi for w in caption.split())


def test_blind_baseline_run(tiny_cli_args, tiny_data_root: Path, tmp_path: Path) -> None:
    cli = cli_main(
        ["fit", *tiny_cli_args(tiny_data_root, tmp_path, "--model.camera.preset", "ideal",
                               "--model.blind", "true", *SHORT)]
    )  # fmt: skip
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu",
                      weights_only=False)  # fmt: skip
    assert ckpt["hyper_parameters"]["blind"] is True
    assert evaluate.camera_name(ckpt["hyper_parameters"]) == "blind"
    assert cli.model.label_head is None  # nothing to see, nothing to label
    rows = list(csv.DictReader((next(tmp_path.glob("version_*")) / "csv" / "metrics.csv").open()))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)

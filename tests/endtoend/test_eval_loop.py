"""The validation / test hooks without a Trainer: one row per image, examples kept for figures,
the rows reset at the next epoch (the logged metrics are tests/endtoend/test_trainer.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from captioning.data import CaptionDataset, collate_captions, load_records
from captioning.vocab import Vocabulary
from endtoend.privacy_captioner import PrivacyCaptioner

IDEAL = {"preset": "ideal", "read_noise_std": 0.0, "quantize_bits": None}


def test_eval_step_adds_one_row_per_image(synthetic_root: Path) -> None:
    torch.manual_seed(0)
    records = load_records(synthetic_root, "val")[:4]
    vocab = Vocabulary.build([c for r in records for c in r.captions], min_count=1)
    batch = collate_captions(
        [CaptionDataset(records, vocab, image_size=32)[i] for i in range(len(records))]
    )
    model = PrivacyCaptioner(
        vocab_size=len(vocab), camera=IDEAL, backbone="resnet18", grid_size=1,
        trainable_from=None, embed_dim=16, hidden_dim=16, attention_dim=8, cnn_input_size=None,
        max_decode_len=5, log_images=2,
    ).eval()  # fmt: skip
    model.vocab = model.captioner.vocab = vocab
    model.on_validation_epoch_start()
    with torch.no_grad():
        model.validation_step(batch, 0)
    rows = model.gather_outputs()
    assert sorted(rows) == sorted(batch.image_ids.tolist())
    for row in rows.values():  # the noiseless ideal camera captures the scene itself
        assert isinstance(row["caption"], str) and row["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert "wiener_ssim_per_k" not in next(iter(rows.values()))  # the ideal camera has no PSF
    assert len(model.eval_examples["captions"]) == 2
    model.on_test_epoch_start()
    assert model.gather_outputs() == {} and model.eval_examples is None

"""A 10-image overfit run: the loss goes to ~0 and greedy decoding reproduces the captions."""

from __future__ import annotations

from pathlib import Path

import torch

from captioning.data import CaptionDataset, collate_captions, load_records
from captioning.model import Captioner, CaptionerConfig
from captioning.train_captioner import train_step
from captioning.vocab import Vocabulary, tokenize


def test_overfit_ten_images(synthetic_root: Path) -> None:
    torch.manual_seed(0)
    records = load_records(synthetic_root, "train")[:10]
    records = [type(r)(r.image_id, r.path, r.split, r.captions[:1]) for r in records]
    vocab = Vocabulary.build([c for r in records for c in r.captions], min_count=1)
    dataset = CaptionDataset(records, vocab, image_size=32, captions_per_image=1)
    batch = collate_captions([dataset[i] for i in range(len(dataset))])
    # frozen random CNN (cheap steps); the decoder must tell the 10 images apart from its
    # features. Cosine-decayed LR: a large constant Adam step near zero loss can undo the fit.
    config = CaptionerConfig(
        vocab_size=len(vocab),
        backbone="resnet18",
        grid_size=1,
        trainable_from=None,
        embed_dim=32,
        hidden_dim=128,
        attention_dim=16,
        dropout=0.0,
    )
    model = Captioner(config, vocab)
    steps = 400
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    images = batch.float_images()
    first = None
    for _ in range(steps):
        loss, ce = train_step(model, images, batch.captions, batch.caption_to_image, dsr_weight=0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        first = float(ce) if first is None else first
    with torch.no_grad():
        final = float(train_step(model, images, batch.captions, batch.caption_to_image)[1])
    assert first > 2.0
    assert final < 0.01, f"loss only went from {first:.2f} to {final:.3f}"
    out = model.generate(images, beam_size=1, max_len=20)
    expected = [" ".join(tokenize(r.captions[0])) for r in records]
    assert out.captions == expected

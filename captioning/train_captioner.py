"""Train a captioner (no optics: the ideal camera, or ``--blind``) on a COCO/Karpathy-format set.

Plain PyTorch, one device. Per epoch: teacher-forced cross entropy + λ·doubly-stochastic
attention loss, then greedy decoding of the val split scored with the fast metrics (BLEU-4,
CIDEr-D, Python tokenizer); the best val CIDEr-D checkpoint is kept. At the end the best
model captions the test split with beam search and gets the full metrics (BLEU-1..4, METEOR,
ROUGE-L, CIDEr-D; SPICE when available).

Example (embedded data set, CPU)::

    python -m captioning.synthetic --out data/synthetic
    python -m captioning.train_captioner --data data/synthetic --out runs/captioner \\
        --epochs 5 --backbone resnet18 --image-size 128
    python -m captioning.train_captioner ... --blind      # blank-image baseline

Writes ``<out>/captioner.pt`` (``{"model_config", "state_dict", "vocab", ...}``, loadable by
``evaluate.py caption``), ``<out>/vocab.json``, ``<out>/test_results.json`` (COCO results
format) and ``<out>/test_metrics.json``.

No data augmentation: horizontal flips would swap "left of" / "right of" in the captions.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from captioning.data import CaptionDataset, collate_captions, ensure_prepared, load_records
from captioning.decoder import caption_loss, doubly_stochastic_loss
from captioning.metrics import fast_scores, save_metrics, save_results, score_captions
from captioning.model import Captioner, CaptionerConfig, save_checkpoint
from captioning.vocab import Vocabulary
from optics.cli_errors import ArgumentParser, finite_float, positive_int, run_cli

__all__ = ["blank_like", "caption_dataset", "main", "train_step"]

logger = logging.getLogger(__name__)


def blank_like(images: torch.Tensor, value: float = 0.5) -> torch.Tensor:
    """A uniform grey image batch of the same shape (the blind baseline's input)."""
    return torch.full_like(images, value)


def train_step(
    model: Captioner,
    images: torch.Tensor,
    captions: torch.Tensor,
    caption_to_image: torch.Tensor,
    dsr_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of one batch.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1]; captions ``(N, T)``; caption_to_image ``(N,)``.

    Returns:
        total loss (cross entropy + λ·DSR) and the cross entropy alone (detached).
    """
    logits, alphas = model(images, captions, caption_to_image)
    targets = captions[:, 1:]
    ce = caption_loss(logits, targets, Vocabulary.pad_id)
    loss = ce
    if dsr_weight > 0:
        loss = loss + dsr_weight * doubly_stochastic_loss(alphas, targets != Vocabulary.pad_id)
    return loss, ce.detach()


@torch.no_grad()
def caption_dataset(
    model: Captioner,
    dataset: CaptionDataset,
    batch_size: int = 32,
    beam_size: int = 3,
    max_len: int = 20,
    device: torch.device | str = "cpu",
    blind: bool = False,
) -> dict[int, str]:
    """Caption every image of a data set: image id -> caption."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        collate_fn=collate_captions)
    out: dict[int, str] = {}
    for batch in loader:
        images = batch.float_images().to(device)
        if blind:
            images = blank_like(images)
        result = model.generate(images, beam_size=beam_size, max_len=max_len)
        assert result.captions is not None
        out.update(zip(batch.image_ids.tolist(), result.captions, strict=True))
    return out


def _prepared(data: Path, split: str, size: int) -> Path:
    prepared = data / f"prepared_{size}"
    ensure_prepared(load_records(data, split), prepared, split, size)  # rebuilt when stale
    return prepared


def format_table(metrics: dict[str, float | None]) -> str:
    """Markdown table, scores x100 (CIDEr-D too, as in papers)."""
    names = [k for k in metrics]
    cells = ["n/a" if metrics[k] is None else f"{100 * metrics[k]:.1f}" for k in names]
    return "| " + " | ".join(names) + " |\n|" + "---|" * len(names) + "\n| " + \
        " | ".join(cells) + " |"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m captioning.train_captioner ...``: bad input gives one line ``error: ...``
    (exit 2); ``--debug`` or ``PRIVCAM_DEBUG=1`` shows the traceback."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    p = ArgumentParser(prog="python -m captioning.train_captioner",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="data root (Karpathy and/or COCO files)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--backbone", default="resnet101")
    p.add_argument("--weights", default=None,
                   help="torchvision enum name (e.g. IMAGENET1K_V2) or local state_dict file")
    p.add_argument("--trainable-from", default="conv1",
                   help="first trainable ResNet stage (conv1 = all; 'none' freezes the CNN)")
    p.add_argument("--image-size", type=positive_int, default=224)
    p.add_argument("--grid-size", type=int, default=0,
                   help="attention grid G (0: native feature map size, at most 7)")
    p.add_argument("--blind", action="store_true", help="feed a blank grey image (baseline)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per batch")
    p.add_argument("--captions-per-image", type=positive_int, default=5)
    p.add_argument("--lr", type=finite_float, default=5e-4)
    p.add_argument("--encoder-lr", type=finite_float, default=None, help="default: --lr")
    p.add_argument("--weight-decay", type=finite_float, default=0.0)
    p.add_argument("--dsr-weight", type=finite_float, default=1.0,
                   help="λ of the attention regulariser")
    p.add_argument("--embed-dim", type=positive_int, default=1000)
    p.add_argument("--hidden-dim", type=positive_int, default=1000)
    p.add_argument("--attention-dim", type=positive_int, default=512)
    p.add_argument("--dropout", type=finite_float, default=0.5)
    p.add_argument("--min-count", type=positive_int, default=5)
    p.add_argument("--beam-size", type=positive_int, default=3)
    p.add_argument("--max-len", type=positive_int, default=20)
    p.add_argument("--max-train-images", type=positive_int, default=None, help="default: all")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-test", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    torch.manual_seed(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    train_records = load_records(data, "train")
    vocab = Vocabulary.build((c for r in train_records for c in r.captions),
                             min_count=args.min_count)
    vocab.save(out / "vocab.json")
    print(f"vocabulary: {len(vocab)} tokens from {len(train_records)} training images")
    train_set = CaptionDataset.from_prepared(_prepared(data, "train", args.image_size), "train",
                                             vocab, args.captions_per_image, seed=args.seed)
    if args.max_train_images:
        train_set.records = train_set.records[: args.max_train_images]
    val_set = CaptionDataset.from_prepared(_prepared(data, "val", args.image_size), "val",
                                           vocab, None)
    grid = args.grid_size or min(7, math.ceil(args.image_size / 32))
    trainable = None if args.trainable_from == "none" else args.trainable_from
    config = CaptionerConfig(
        vocab_size=len(vocab), backbone=args.backbone, weights=args.weights, grid_size=grid,
        trainable_from=trainable, channels_last=device.type == "cuda",
        embed_dim=args.embed_dim, hidden_dim=args.hidden_dim,
        attention_dim=args.attention_dim, dropout=args.dropout)
    model = Captioner(config, vocab).to(device)
    if args.blind:  # the encoder only ever sees a constant image: nothing to learn there
        model.encoder.requires_grad_(False)
    enc_params = [q for q in model.encoder.parameters() if q.requires_grad]
    groups = [{"params": list(model.decoder.parameters()), "lr": args.lr}]
    if enc_params and not args.blind:
        groups.append({"params": enc_params, "lr": args.encoder_lr or args.lr})
    optimizer = torch.optim.Adam(groups, weight_decay=args.weight_decay)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=False,
                        collate_fn=collate_captions,
                        generator=torch.Generator().manual_seed(args.seed))
    total_steps = max(1, args.epochs * len(loader))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    use_bf16 = device.type == "cuda"
    best_cider, best_epoch = -1.0, -1
    ckpt_path = out / "captioner.pt"
    history = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        if args.blind:  # constant input: keep BatchNorm statistics fixed so train == eval
            model.encoder.eval()
        t0 = time.perf_counter()
        loss_sum, ce_sum, n_batches = 0.0, 0.0, 0
        for batch in loader:
            batch = batch.to(device, non_blocking=True)
            images = batch.float_images()
            if args.blind:
                images = blank_like(images)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, ce = train_step(model, images, batch.captions, batch.caption_to_image,
                                      args.dsr_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach())
            ce_sum += float(ce)
            n_batches += 1
        train_time = time.perf_counter() - t0
        candidates = caption_dataset(model, val_set, args.batch_size, 1, args.max_len, device,
                                     args.blind)
        scores = fast_scores(val_set.references, candidates)
        history.append({"epoch": epoch, "loss": loss_sum / n_batches, "ce": ce_sum / n_batches,
                        **scores, "train_s": train_time})
        print(f"epoch {epoch}: loss {loss_sum / n_batches:.3f} (ce {ce_sum / n_batches:.3f}) "
              f"val BLEU-4 {100 * scores['BLEU-4']:.1f} CIDEr-D {100 * scores['CIDEr-D']:.1f} "
              f"[{train_time:.0f}s train, {time.perf_counter() - t0 - train_time:.0f}s val] "
              f"e.g. {next(iter(candidates.values()))!r}", flush=True)
        if scores["CIDEr-D"] > best_cider:
            best_cider, best_epoch = scores["CIDEr-D"], epoch
            save_checkpoint(ckpt_path, model, vocab, blind=args.blind, epoch=epoch,
                            image_size=args.image_size)
    (out / "history.json").write_text(json.dumps(history, indent=1))
    print(f"best val CIDEr-D {100 * best_cider:.1f} at epoch {best_epoch}; saved {ckpt_path}")
    if args.skip_test:
        return 0

    model.load_state_dict(torch.load(ckpt_path, map_location=device,
                                     weights_only=True)["state_dict"])
    try:
        test_set = CaptionDataset.from_prepared(_prepared(data, "test", args.image_size), "test",
                                                vocab, None)
    except FileNotFoundError as err:
        print(f"no test split ({err}); done")
        return 0
    candidates = caption_dataset(model, test_set, args.batch_size, args.beam_size, args.max_len,
                                 device, args.blind)
    metrics = score_captions(test_set.references, candidates)
    save_results(out / "test_results.json", candidates)
    wall = time.perf_counter() - t_start
    save_metrics(out / "test_metrics.json", metrics, split="test", beam_size=args.beam_size,
                 blind=args.blind, best_epoch=best_epoch, wall_s=wall, argv=list(argv or
                                                                                   sys.argv[1:]))
    print(f"test split ({len(candidates)} images, beam {args.beam_size}"
          f"{', blind' if args.blind else ''}), total wall {wall:.0f}s:")
    print(format_table(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())

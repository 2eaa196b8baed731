"""Captioning speed benchmark; prints one JSON line.

Measures, at one batch size (B images with 5 captions each):

* ``train_images_per_s``: encoder + top-down decoder training step (forward, loss, backward,
  Adam step), teacher forcing over 16-word captions;
* ``beam_images_per_s``: beam-search decoding (beam 3, max 20 tokens), no gradients;
* ``resnet_fwd_bwd_images_per_s``: the bare ResNet forward + backward at the same batch;
* ``decoder_overhead``: bare ResNet throughput / full training-step throughput (1.0 = the
  decoder is free).

On a GPU the steps run under bf16 autocast and the encoder in channels-last.

    python benchmarks/bench_captioning.py --batch 32 --steps 10 --device cuda
    python benchmarks/bench_captioning.py --batch 4 --steps 2 --device cpu
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from captioning.decoder import caption_loss, doubly_stochastic_loss
from captioning.model import Captioner, CaptionerConfig


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32, help="images per step (5 captions each)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--backbone", default="resnet101")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--vocab-size", type=int, default=10000, help="COCO Karpathy: ~9.5k words")
    p.add_argument("--beam-size", type=int, default=3)
    args = p.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    torch.manual_seed(0)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    config = CaptionerConfig(vocab_size=args.vocab_size, backbone=args.backbone, grid_size=7,
                             trainable_from="conv1", channels_last=cuda)
    model = Captioner(config).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    b, n_caps, length = args.batch, 5, 18  # <bos> + 16 words + <eos>
    images = torch.rand(b, 3, args.image_size, args.image_size, device=device)
    captions = torch.randint(4, args.vocab_size, (b * n_caps, length), device=device)
    captions[:, 0] = 1
    captions[:, -1] = 2
    c2i = torch.arange(b, device=device).repeat_interleave(n_caps)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)

    def train_step() -> None:
        with autocast():
            logits, alphas = model(images, captions, c2i)
            loss = caption_loss(logits, captions[:, 1:]) + doubly_stochastic_loss(alphas)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def beam_step() -> None:
        with autocast():
            model.generate(images, beam_size=args.beam_size, max_len=20)

    encoder = model.encoder

    def resnet_step() -> None:
        with autocast():
            fmap = encoder.feature_map(images)
        fmap.float().mean().backward()

    t_train = _time(train_step, args.steps, args.warmup, device)
    t_beam = _time(beam_step, args.steps, args.warmup, device)
    model.zero_grad(set_to_none=True)
    t_resnet = _time(resnet_step, args.steps, args.warmup, device)
    result = {
        "benchmark": "captioning",
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "backbone": args.backbone,
        "image_size": args.image_size,
        "batch_images": b,
        "captions_per_image": n_caps,
        "autocast": "bf16" if cuda else "none",
        "train_images_per_s": round(b / t_train, 2),
        "beam_images_per_s": round(b / t_beam, 2),
        "beam_size": args.beam_size,
        "resnet_fwd_bwd_images_per_s": round(b / t_resnet, 2),
        "decoder_overhead": round(t_train / t_resnet, 3),
        "steps": args.steps,
    }
    if cuda:
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import device_name, time_fn

from captioning.decoder import caption_loss, doubly_stochastic_loss
from captioning.model import Captioner, CaptionerConfig
from optics.cli_config import ArgumentParser


class CaptionerSteps:
    """A random-weight captioner on a fixed random batch, and its three timed steps.

    Args:
        device: where to run; on CUDA the steps use bf16 autocast and channels-last.
        batch: images (5 captions each, 16 words + <bos>/<eos>).
        config: CaptionerConfig overrides (default ResNet-101, 7×7 grid, all trainable).
        compile_backend: if given, the captioner is wrapped in ``torch.compile``.
    """

    def __init__(
        self,
        device: torch.device,
        batch: int,
        backbone: str = "resnet101",
        image_size: int = 224,
        vocab_size: int = 10000,
        beam_size: int = 3,
        config: dict[str, Any] | None = None,
        compile_backend: str | None = None,
    ) -> None:
        torch.manual_seed(0)
        self.device, self.beam_size = device, beam_size
        self.cuda = device.type == "cuda"
        cfg = {
            "vocab_size": vocab_size,
            "backbone": backbone,
            "grid_size": 7,
            "trainable_from": "conv1",
            "channels_last": self.cuda,
            **(config or {}),
        }
        self.model = Captioner(CaptionerConfig(**cfg)).to(device).train()
        self.run = (
            self.model
            if compile_backend is None
            else torch.compile(self.model, backend=compile_backend)
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        n_caps, length = 5, 18  # <bos> + 16 words + <eos>
        self.images = torch.rand(batch, 3, image_size, image_size, device=device)
        self.captions = torch.randint(4, vocab_size, (batch * n_caps, length), device=device)
        self.captions[:, 0] = 1
        self.captions[:, -1] = 2
        self.c2i = torch.arange(batch, device=device).repeat_interleave(n_caps)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda)

    def train_step(self) -> None:
        with self.autocast():
            logits, alphas = self.run(self.images, self.captions, self.c2i)
            loss = caption_loss(logits, self.captions[:, 1:]) + doubly_stochastic_loss(alphas)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def beam_step(self) -> None:
        with torch.no_grad(), self.autocast():
            self.model.generate(self.images, beam_size=self.beam_size, max_len=20)

    def resnet_step(self) -> None:
        self.model.zero_grad(set_to_none=True)
        with self.autocast():
            fmap = self.model.encoder.feature_map(self.images)
        fmap.float().mean().backward()


def make_beam_step(device: torch.device, batch: int, **kwargs: Any) -> Callable[[], None]:
    """Beam-search decoding of ``batch`` images (beam 3 by default), as a callable."""
    return CaptionerSteps(device, batch, **kwargs).beam_step


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32, help="images per step (5 captions each)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--backbone", default="resnet101")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--vocab-size", type=int, default=10000, help="COCO Karpathy: ~9.5k words")
    p.add_argument("--beam-size", type=int, default=3)
    args = p.parse_args(argv)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    steps = CaptionerSteps(
        device, args.batch, args.backbone, args.image_size, args.vocab_size, args.beam_size
    )
    b = args.batch

    def timed(fn: Callable[[], None]) -> float:
        return time_fn(fn, device, repeats=args.steps, warmup=args.warmup).mean_s

    t_train = timed(steps.train_step)
    t_beam = timed(steps.beam_step)
    t_resnet = timed(steps.resnet_step)
    result = {
        "benchmark": "captioning",
        "device": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "backbone": args.backbone,
        "image_size": args.image_size,
        "batch_images": b,
        "captions_per_image": 5,
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

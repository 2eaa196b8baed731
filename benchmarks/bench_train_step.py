"""Training-step throughput of the end-to-end model; prints one JSON line.

Full step = default optics (896² pupil, 350 Zernike terms, 3 wavelengths, PSF 256²) on 256²
scenes → resize to 224² → ResNet-101 → top-down decoder (5 captions per image, 16 tokens) →
loss → backward → Adam step. Reported beside bare ResNet-101 forward+backward (+ step) at the
same batch and precision, so the optics' and decoder's overhead is a ratio.

    python benchmarks/bench_train_step.py [--device cuda] [--batch 128] [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torchvision

from captioning.data import CaptionBatch
from train import PrivacyCaptioner


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(step, device: torch.device, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--batch", type=int, default=None, help="images per step (default 128 GPU, 4 CPU)"
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default=None,
        help="default bf16 on CUDA, fp32 on CPU",
    )
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--backbone", default="resnet101")
    p.add_argument("--image", type=int, default=256, help="scene size (PSF size)")
    p.add_argument("--cnn", type=int, default=224, help="CNN input size")
    p.add_argument("--vocab", type=int, default=10000)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    batch = args.batch or (128 if device.type == "cuda" else 4)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")

    model = PrivacyCaptioner(
        vocab_size=args.vocab,
        backbone=args.backbone,
        cnn_input_size=args.cnn,
        channels_last=device.type == "cuda",
        trainable_from="layer1",
        camera={"preset": "privacy", "psf_size_px": args.image, "init_std_um": 0.002},
    ).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.param_groups())
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(
        0, 256, (batch, 3, args.image, args.image), dtype=torch.uint8, generator=gen
    )
    captions = torch.randint(4, args.vocab, (batch * 5, 18), generator=gen)
    captions[:, 0] = 1
    captions[:, -1] = 2
    data = CaptionBatch(
        images, captions, torch.arange(batch).repeat_interleave(5), torch.arange(batch)
    ).to(device)

    def full_step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = model.losses(data)["loss"]
        loss.backward()
        opt.step()

    resnet = getattr(torchvision.models, args.backbone)().to(device)
    if device.type == "cuda":
        resnet = resnet.to(memory_format=torch.channels_last)
    ropt = torch.optim.Adam(resnet.parameters())
    x = torch.rand(batch, 3, args.cnn, args.cnn, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)

    def bare_step() -> None:
        ropt.zero_grad(set_to_none=True)
        with autocast:
            out = resnet(x)
        out.float().mean().backward()
        ropt.step()

    t_full = _time(full_step, device, args.warmup, args.steps)
    t_bare = _time(bare_step, device, args.warmup, args.steps)
    print(
        json.dumps(
            {
                "benchmark": "train_step",
                "device": args.device,
                "device_name": torch.cuda.get_device_name()
                if device.type == "cuda"
                else platform.processor() or platform.machine(),
                "torch_threads": torch.get_num_threads(),
                "precision": precision,
                "batch": batch,
                "backbone": args.backbone,
                "full_step_images_per_s": batch / t_full,
                "bare_resnet_images_per_s": batch / t_bare,
                "full_over_bare": t_bare / t_full,
                "full_step_s": t_full,
                "bare_step_s": t_bare,
            }
        )
    )


if __name__ == "__main__":
    main()

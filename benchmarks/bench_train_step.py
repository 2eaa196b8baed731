"""Training-step throughput of the end-to-end model; prints one JSON line.

Full step = default optics (896² pupil, 350 Zernike terms, 3 wavelengths, PSF 256²) on 256²
scenes → resize to 224² → ResNet-101 → top-down decoder (5 captions per image, 16 tokens) →
loss → backward → Adam step. Reported beside bare ResNet-101 forward+backward (+ step) at the
same batch and precision, so the optics' and decoder's overhead is a ratio.

    python benchmarks/bench_train_step.py [--device cuda] [--batch 128] [--precision bf16]
        [--compile-captioner] [--compile-optics]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch
import torchvision
from benchlib import device_name, measure

from captioning.data import CaptionBatch
from optics.cli_config import ArgumentParser
from train import PrivacyCaptioner


def _autocast(device: torch.device, precision: str) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_full_step(
    device: torch.device,
    batch: int,
    precision: str = "bf16",
    backbone: str = "resnet101",
    image: int = 256,
    cnn: int = 224,
    vocab: int = 10000,
    channels_last: bool | None = None,
    camera: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    compile_captioner: bool = False,
    compile_optics: bool = False,
    compile_backend: str = "inductor",
) -> Callable[[], None]:
    """One end-to-end training step (optics → CNN → decoder → loss → backward → Adam) on a
    fixed random batch of ``batch`` uint8 scenes (``image``²) with 5 captions each.

    ``camera`` overrides the privacy preset (default: the published optics with a random
    surface that samples correctly); ``compile_*`` wrap the captioner / the lens in
    ``torch.compile`` (``compile_backend``)."""
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    cam = {"preset": "privacy", "psf_size_px": image, "init_std_um": 0.002, **(camera or {})}
    model = PrivacyCaptioner(
        vocab_size=vocab,
        backbone=backbone,
        cnn_input_size=cnn,
        channels_last=channels_last,
        trainable_from="layer1",
        camera=cam,
        # the published mask (32 px of a 256-px PSF) scaled to this PSF: a fixed 32 would cover a
        # small PSF whole, which PrivacyCaptioner refuses
        **{"psf_mask_radius_px": cam["psf_size_px"] / 8, **(model_kwargs or {})},
    ).to(device)
    if channels_last:
        model.captioner = model.captioner.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.param_groups())
    if compile_captioner:
        model.captioner = torch.compile(model.captioner, backend=compile_backend)
    if compile_optics and model.camera.lens is not None:
        model.camera.lens = torch.compile(model.camera.lens, backend=compile_backend)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, image, image), dtype=torch.uint8, generator=gen)
    captions = torch.randint(4, vocab, (batch * 5, 18), generator=gen)
    captions[:, 0] = 1
    captions[:, -1] = 2
    data = CaptionBatch(
        images, captions, torch.arange(batch).repeat_interleave(5), torch.arange(batch)
    ).to(device)
    autocast = _autocast(device, precision)

    def full_step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = model.losses(data)["loss"]
        loss.backward()
        opt.step()

    return full_step


def make_bare_step(
    device: torch.device,
    batch: int,
    precision: str = "bf16",
    backbone: str = "resnet101",
    cnn: int = 224,
    channels_last: bool | None = None,
) -> Callable[[], None]:
    """Bare torchvision ResNet forward + backward + Adam step (random weights) at ``cnn``²."""
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    resnet = getattr(torchvision.models, backbone)().to(device)
    x = torch.rand(batch, 3, cnn, cnn, device=device)
    if channels_last:
        resnet = resnet.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    ropt = torch.optim.Adam(resnet.parameters())
    autocast = _autocast(device, precision)

    def bare_step() -> None:
        ropt.zero_grad(set_to_none=True)
        with autocast:
            out = resnet(x)
        out.float().mean().backward()
        ropt.step()

    return bare_step


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
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
    p.add_argument("--compile-captioner", action="store_true", help="torch.compile the captioner")
    p.add_argument("--compile-optics", action="store_true", help="torch.compile the lens")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    batch = args.batch or (128 if device.type == "cuda" else 4)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")

    full = measure(
        make_full_step(
            device,
            batch,
            precision,
            args.backbone,
            args.image,
            args.cnn,
            args.vocab,
            compile_captioner=args.compile_captioner,
            compile_optics=args.compile_optics,
        ),
        device,
        batch,
        repeats=args.steps,
        warmup=args.warmup,
    )
    bare = measure(
        make_bare_step(device, batch, precision, args.backbone, args.cnn),
        device,
        batch,
        repeats=args.steps,
        warmup=args.warmup,
    )
    print(
        json.dumps(
            {
                "benchmark": "train_step",
                "device": args.device,
                "device_name": device_name(device),
                "torch_threads": torch.get_num_threads(),
                "precision": precision,
                "batch": batch,
                "backbone": args.backbone,
                "compile_captioner": args.compile_captioner,
                "compile_optics": args.compile_optics,
                "full_step_images_per_s": full["images_per_s"],
                "bare_resnet_images_per_s": bare["images_per_s"],
                "full_over_bare": bare["step_s"] / full["step_s"],
                "full_step_s": full["step_s"],
                "bare_step_s": bare["step_s"],
                "full_peak_memory_gib": full["peak_memory_gib"],
                "bare_peak_memory_gib": bare["peak_memory_gib"],
            }
        )
    )


if __name__ == "__main__":
    main()

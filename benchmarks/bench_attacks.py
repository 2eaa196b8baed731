"""Wiener attack throughput: batched torch vs a per-image, per-channel scikit-image loop.

Both solve the same circular problem (skimage.restoration.wiener with its default Laplacian
regulariser, clip=False), so their outputs agree (the max difference is printed). Also times
the padded, edge-tapered linear-model variant the attack harness uses. Prints one JSON line.

    python benchmarks/bench_attacks.py [--size 256] [--batch 32] [--psf 64]

Run it as `make bench` (or with the Makefile's MALLOC_* variables exported): with glibc's
default thresholds every 25 MB spectrum is a fresh mmap, and page faults take 2-3x the FFT time.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from benchlib import time_fn
from skimage.restoration import wiener

from attacks.functional import wiener_deconvolve
from optics.cli_config import ArgumentParser


def _best_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall times (s) of each function, run interleaved ``repeats`` times after one warm-up
    each, so a burst of load on a shared machine hits every contender alike. Single calls
    timed by hand on purpose: ``torch.utils.benchmark.Timer`` (``benchlib.time_fn``, used for
    the GPU rows) times blocks of calls with its own warm-up, so it cannot interleave (and the
    CPU contenders here do no asynchronous work that needs its synchronising clock)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def make_wiener_step(
    batch: int,
    size: int = 256,
    psf_px: int = 64,
    device: torch.device | str = "cpu",
    k: float = 1e-2,
    boundary: str = "circular",
    seed: int = 0,
) -> Callable[[], torch.Tensor]:
    """Batched torch Wiener deconvolution (Laplacian regulariser) of ``batch`` random RGB
    ``size``² images with a random normalised ``psf_px``² PSF per channel, as a callable."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=gen).to(device)
    psf = torch.rand(3, psf_px, psf_px, generator=gen)
    psf = (psf / psf.sum(dim=(-2, -1), keepdim=True)).to(device)

    def step() -> torch.Tensor:
        return wiener_deconvolve(images, psf, k, "laplacian", boundary)

    return step


def _gpu_record(args: Any, k: float) -> dict[str, Any]:
    """Batched Wiener throughput on the GPU, circular and tapered boundary."""
    dev = torch.device("cuda")
    gpu_times = {
        boundary: time_fn(
            make_wiener_step(args.gpu_batch, args.size, args.psf, dev, k, boundary),
            dev,
            repeats=args.repeats,
        ).mean_s
        for boundary in ("circular", "taper")
    }
    return {
        "device": torch.cuda.get_device_name(),
        "batch": args.gpu_batch,
        "images_per_s": round(args.gpu_batch / gpu_times["circular"], 1),
        "linear_model_taper_images_per_s": round(args.gpu_batch / gpu_times["taper"], 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--psf", type=int, default=64)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="interleaved timed runs of each contender (best and median kept)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=gen)
    psf = torch.rand(3, args.psf, args.psf, generator=gen)
    psf /= psf.sum(dim=(-2, -1), keepdim=True)
    k = 1e-2
    np_images, np_psf = images.numpy(), psf.numpy()

    def skimage_loop() -> np.ndarray:
        return np.stack(
            [
                np.stack([wiener(img[c], np_psf[c], k, clip=False) for c in range(3)])
                for img in np_images
            ]
        )

    def torch_batched() -> torch.Tensor:
        return wiener_deconvolve(images, psf, k, "laplacian", "circular")

    def torch_linear() -> torch.Tensor:
        return wiener_deconvolve(images, psf, k, "laplacian", "taper")

    diff = float(np.abs(torch_batched().numpy() - skimage_loop()).max())
    times = _best_times(
        {"skimage": skimage_loop, "torch": torch_batched, "torch_linear": torch_linear},
        args.repeats,
    )
    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "benchmark": "wiener",
        "image": f"{args.size}x{args.size}x3",
        "psf_px": args.psf,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "skimage_loop_images_per_s": round(args.batch / best["skimage"], 1),
        "torch_cpu_images_per_s": round(args.batch / best["torch"], 1),
        "speedup_cpu": round(best["skimage"] / best["torch"], 2),
        "speedup_cpu_median": round(median["skimage"] / median["torch"], 2),
        "max_abs_diff_vs_skimage": diff,
        "torch_cpu_linear_model_taper_images_per_s": round(args.batch / best["torch_linear"], 1),
        # glibc's allocator settings decide whether big buffers are page-faulted afresh each call
        "malloc_env": {
            name: os.environ.get(name)
            for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
        },
        "gpu": None,
    }
    if torch.cuda.is_available():
        result["gpu"] = _gpu_record(args, k)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

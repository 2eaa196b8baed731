"""Wiener attack throughput: batched torch vs a per-image, per-channel scikit-image loop.

Both solve the same circular problem (skimage.restoration.wiener with its default Laplacian
regulariser, clip=False), so their outputs agree (the max difference is printed). Also times
the padded, edge-tapered linear-model variant the attack harness uses. Prints one JSON line.

    python benchmarks/bench_attacks.py [--size 256] [--batch 32] [--psf 64]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from skimage.restoration import wiener

from attacks.functional import wiener_deconvolve


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--psf", type=int, default=64)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=gen)
    psf = torch.rand(3, args.psf, args.psf, generator=gen)
    psf /= psf.sum(dim=(-2, -1), keepdim=True)
    k = 1e-2
    np_images, np_psf = images.numpy(), psf.numpy()

    def skimage_loop() -> np.ndarray:
        return np.stack([np.stack([wiener(img[c], np_psf[c], k, clip=False) for c in range(3)])
                         for img in np_images])

    def torch_batched() -> torch.Tensor:
        return wiener_deconvolve(images, psf, k, "laplacian", "circular")

    def torch_linear() -> torch.Tensor:
        return wiener_deconvolve(images, psf, k, "laplacian", "taper")

    diff = float(np.abs(torch_batched().numpy() - skimage_loop()).max())
    t_sk = _time(skimage_loop, 1)
    t_torch = _time(torch_batched, args.repeats)
    t_lin = _time(torch_linear, args.repeats)
    result = {
        "benchmark": "wiener",
        "image": f"{args.size}x{args.size}x3",
        "psf_px": args.psf,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "skimage_loop_images_per_s": round(args.batch / t_sk, 1),
        "torch_cpu_images_per_s": round(args.batch / t_torch, 1),
        "speedup_cpu": round(t_sk / t_torch, 1),
        "max_abs_diff_vs_skimage": diff,
        "torch_cpu_linear_model_taper_images_per_s": round(args.batch / t_lin, 1),
        "gpu": None,
    }
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        big = torch.rand(args.gpu_batch, 3, args.size, args.size, device=dev)
        psf_d = psf.to(dev)

        def gpu(boundary: str) -> float:
            def run() -> None:
                wiener_deconvolve(big, psf_d, k, "laplacian", boundary)
                torch.cuda.synchronize()
            return args.gpu_batch / _time(run, args.repeats)

        result["gpu"] = {"device": torch.cuda.get_device_name(), "batch": args.gpu_batch,
                         "images_per_s": round(gpu("circular"), 1),
                         "linear_model_taper_images_per_s": round(gpu("taper"), 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

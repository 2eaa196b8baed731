"""Learned attackers' training throughput, and the saturating study's wall time it implies;
one JSON line.

Each learned attacker (``attacks.attackers``) is trained with the code path of
``evaluate.py attack`` (``attacks.training.train_attacker``: Lightning, a tenth held out for
validation, every epoch validated) on ``--pairs`` generated pairs for ``--epochs``; the median
wall time of its epochs after the first (start-up) is the steady cost, reported as seconds per
pair-epoch (a pair of the level's pool, validation included, checkpoint writes not). Training time
does not depend on the images, so the pairs are noise; the non-blind attacker gets a Gaussian
PSF.

The saturation protocol (``evaluate.py attack --saturate``) trains each attacker on doubling
levels from ``--start`` to ``--cap`` pairs, each level for at most ``--max-epochs``; its worst
case (every level at its epoch cap) is Σ pairs × max_epochs × seconds per pair-epoch per
attacker and camera. ``projection`` gives it per attacker, per camera and for ``--cameras``
cameras (the study's default: 5 lenses + defocus + lowres); a level that plateaus first
costs less, so it is an upper bound on training time (pair generation and testing come on top,
seconds per level on the CPU).

    python benchmarks/bench_attackers.py [--device cuda] [--attackers unet,wiener_unet,deblurgan]
        [--pairs 160] [--epochs 3] [--image-size 64] [--start 600 --cap 19200 --max-epochs 60]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optics.cli_config import ArgumentParser

STUDY_CAMERAS = 7  # endtoend.study: five lenses and the defocus and lowres references


def gaussian_psf(size_px: int = 9, sigma_px: float = 1.5) -> torch.Tensor:
    """(3, K, K) normalised Gaussian PSF, the non-blind attacker's known PSF here."""
    r = torch.arange(size_px, dtype=torch.float32) - (size_px - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma_px**2))
    return (g / g.sum()).expand(3, -1, -1).clone()


def _epoch_seconds(kind: str, pairs: np.ndarray, epochs: int, device: str, batch: int) -> list:
    from attacks.attackers import get_attacker
    from attacks.training import train_attacker

    spec = get_attacker(kind)
    options: dict[str, Any] = {}
    if spec.needs_psf:
        options.update(psf=gaussian_psf(), k=1e-2)
    if spec.weights_option:
        options[spec.weights_option] = None  # random backbone: nothing downloads
    with tempfile.TemporaryDirectory(prefix=f"privcam_bench_{kind}_") as tmp:
        _, info = train_attacker(kind, pairs, pairs, tmp, epochs=epochs, batch_size=batch,
                                 seed=0, accelerator="gpu" if device.startswith("cuda") else "cpu",
                                 resume=False, **options)  # fmt: skip
        return info["epoch_seconds"]


def measure(kind: str, n_pairs: int, size_px: int, epochs: int, device: str, batch: int) -> dict:
    """Seconds per pair-epoch of ``kind``: the median wall time of an ``epochs``-epoch run's
    epochs after the first (the first pays start-up: kernels, allocator, cuDNN autotuning)."""
    if epochs < 2:
        raise ValueError(f"--epochs {epochs}: at least 2 (the first epoch is start-up)")
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 256, (n_pairs, size_px, size_px, 3), dtype=np.uint8)
    seconds = _epoch_seconds(kind, pairs, epochs, device, batch)
    per_pair_epoch = float(np.median(seconds[1:])) / n_pairs
    return {"epoch_seconds": seconds, "seconds_per_pair_epoch": per_pair_epoch,
            "pairs_per_s": 1 / per_pair_epoch}  # fmt: skip


def projection(per_pair_epoch: dict[str, float], start: int, cap: int, max_epochs: int,
               cameras: int) -> dict[str, Any]:  # fmt: skip
    """Worst-case training seconds of the saturation protocol: every level of
    ``attacks.saturation.doubling_levels(start, cap)`` at its ``max_epochs`` cap."""
    from attacks.saturation import doubling_levels

    levels = doubling_levels(start, cap)
    per_level = {k: {str(n): s * n * max_epochs for n in levels} for k, s in per_pair_epoch.items()}
    per_camera = {k: sum(seconds.values()) for k, seconds in per_level.items()}
    return {
        "levels": levels,
        "max_epochs": max_epochs,
        "cameras": cameras,
        "level_seconds_at_cap": per_level,
        "per_camera_seconds_at_cap": per_camera,
        "study_hours_at_cap": sum(per_camera.values()) * cameras / 3600,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from attacks.attackers import learned_names
    from attacks.saturation import SaturationConfig

    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--attackers", default=",".join(learned_names()),
                   help="comma-separated learned attackers")  # fmt: skip
    p.add_argument("--pairs", type=int, default=160, help="pairs per timing run")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the longer run (>= 2)")
    p.add_argument("--image-size", type=int, default=64, help="pair side in px (the study's 64)")
    p.add_argument("--batch", type=int, default=8, help="attacker batch (evaluate.py attack's)")
    p.add_argument("--start", type=int, default=600, help="--saturate-start of the projection")
    p.add_argument("--cap", type=int, default=19200, help="--saturate-cap of the projection")
    p.add_argument("--max-epochs", type=int, default=60, help="--saturate-max-epochs")
    p.add_argument("--cameras", type=int, default=STUDY_CAMERAS, help="cameras attacked")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.attackers.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(learned_names()))
    if unknown or not kinds:
        p.error(f"--attackers {args.attackers!r}: choose from {', '.join(learned_names())}")
    if args.pairs < 10:
        p.error(f"--pairs {args.pairs}: at least 10 (a tenth is held out for validation)")
    if args.epochs < 2:
        p.error(f"--epochs {args.epochs}: at least 2 (the first epoch is start-up)")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: no CUDA device here (use --device cpu)")
    try:  # the projection's protocol, checked as evaluate.py attack --saturate checks it
        SaturationConfig(start_pairs=args.start, cap_pairs=args.cap, max_epochs=args.max_epochs)
    except ValueError as err:
        p.error(str(err).replace("--saturate-start", "--start").replace("--saturate-cap", "--cap")
                .replace("--epochs", "--max-epochs"))  # fmt: skip
    t0 = time.perf_counter()
    rows = {k: measure(k, args.pairs, args.image_size, args.epochs, args.device, args.batch)
            for k in kinds}  # fmt: skip
    result = {
        "benchmark": "bench_attackers",
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "pairs": args.pairs,
        "image_size_px": args.image_size,
        "batch": args.batch,
        "attackers": rows,
        "projection": projection(
            {k: r["seconds_per_pair_epoch"] for k, r in rows.items()},
            args.start,
            args.cap,
            args.max_epochs,
            args.cameras,
        ),
        "seconds": time.perf_counter() - t0,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

"""COCO-scale input pipeline: prepared uint8 arrays → train.CaptionDataModule loader; one JSON line.

Generates its own COCO-style data set first (Karpathy ``dataset_coco.json`` + JPEGs of mixed
sizes, some grayscale, one corrupt, 5 captions each), prepares it with the data module's own
``prepare_data`` (timed: ``prepare_images_per_s``), then iterates the training loader at the
shipped settings (``configs/coco.yaml``, the base of every COCO camera: batch 64, its
``num_workers``, persistent workers) for several epochs. ``images_per_s`` is the steady state
(epochs after the first); ``first_epoch_images_per_s`` includes the workers' start-up.
Target: ≥ 2,000 images/s at 256² on 2 CPU cores, more than one GPU's end-to-end training step
consumes.

    python benchmarks/bench_input.py [--images 2000] [--size 256] [--workers 8 2 0] [--root DIR]
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from optics.cli_config import ArgumentParser
from train import CaptionDataModule

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = REPO / "configs" / "coco.yaml"
TARGET_IMAGES_PER_S = 2000.0

_COLOURS = {
    "red": (200, 30, 30),
    "green": (30, 160, 40),
    "blue": (30, 60, 200),
    "yellow": (230, 210, 40),
    "white": (235, 235, 235),
    "black": (20, 20, 20),
    "orange": (240, 140, 20),
    "purple": (130, 40, 160),
}
_SHAPES = ("square", "circle")
_TEMPLATES = (
    "a {fg} {shape} on a {bg} background",
    "there is a {fg} {shape} in the picture",
    "a picture of a {fg} {shape}",
    "a {shape} that is {fg} in front of a {bg} wall",
    "the {fg} {shape} is on a {bg} background",
)


def shipped_loader_settings(config: Path = SHIPPED_CONFIG) -> dict[str, Any]:
    """``data.batch_size``, ``data.num_workers`` and ``data.image_size`` of a training config."""
    data = yaml.safe_load(config.read_text())["data"]
    return {k: data[k] for k in ("batch_size", "num_workers", "image_size")}


def _draw(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict[str, str]]:
    names = list(_COLOURS)
    bg, fg = rng.choice(len(names), size=2, replace=False)
    shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
    h, w = (int(size * s) for s in rng.uniform(0.75, 1.5, size=2))
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _COLOURS[names[bg]]
    r = int(min(h, w) * rng.uniform(0.15, 0.35))
    cy, cx = int(rng.integers(r, h - r)), int(rng.integers(r, w - r))
    yy, xx = np.ogrid[:h, :w]
    if shape == "circle":
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    else:
        mask = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
    img[mask] = _COLOURS[names[fg]]
    noise = rng.integers(-12, 13, size=img.shape, dtype=np.int16)
    img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return img, {"fg": names[fg], "bg": names[bg], "shape": shape}


def write_synthetic_coco(
    root: str | Path,
    train: int,
    val: int,
    test: int = 0,
    size: int = 256,
    seed: int = 0,
    gray_fraction: float = 0.1,
    corrupt: int = 0,
) -> Path:
    """Write a COCO-style data set: ``<root>/images/*.jpg`` (sizes 0.75-1.5 × ``size`` per
    side, ``gray_fraction`` of them single-channel, the first ``corrupt`` training files
    truncated JPEGs that ``prepare`` must skip) and ``<root>/dataset_coco.json`` (Karpathy
    format, 5 captions naming the shape and its colours). Returns ``root``."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    entries = []
    splits = ["train"] * train + ["val"] * val + ["test"] * test
    for i, split in enumerate(splits):
        img, words = _draw(rng, size)
        name = f"synthetic_{i:07d}.jpg"
        pil = Image.fromarray(img)
        if rng.random() < gray_fraction:
            pil = pil.convert("L")
        pil.save(root / "images" / name, quality=90)
        if i < corrupt:  # cut off after the header: PIL opens it, decoding fails
            path = root / "images" / name
            path.write_bytes(path.read_bytes()[:200])
        entries.append(
            {
                "filepath": "images",
                "filename": name,
                "split": split,
                "imgid": i,
                "cocoid": i,
                "sentences": [{"raw": t.format(**words)} for t in _TEMPLATES],
            }
        )
    (root / "dataset_coco.json").write_text(json.dumps({"images": entries}))
    return root


def prepare(dm: CaptionDataModule) -> dict[str, float]:
    """Run the data module's ``prepare_data`` (every split) and time it."""
    t0 = time.perf_counter()
    dm.prepare_data()
    seconds = time.perf_counter() - t0
    indexes = [json.loads(p.read_text()) for p in dm.prepared_dir.glob("*_index.json")]
    n = sum(len(index["images"]) for index in indexes)
    skipped = sum(len(index.get("skipped", [])) for index in indexes)
    return {
        "prepare_s": seconds,
        "prepare_images": n,
        "prepare_skipped": skipped,
        "prepare_images_per_s": (n + skipped) / seconds,
    }


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of other processes (the loader's workers), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # not Linux, or the worker is gone
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def measure_loader(dm: CaptionDataModule, epochs: int = 3) -> dict[str, float]:
    """Iterate the training loader for ``epochs`` epochs (persistent workers stay up across
    them); images/s of the first epoch (start-up included) and of the later ones, and the CPU
    time per image of the later epochs (main process + workers, so independent of other load
    on a shared machine: ``cpu_bound_images_per_s`` = cores / CPU-seconds per image)."""
    if epochs < 2:
        raise ValueError(f"epochs must be >= 2 (the first includes start-up), got {epochs}")
    loader = dm.train_dataloader()
    counts, seconds = [], []
    cpu0 = 0.0
    for epoch in range(epochs):
        if epoch == 1:  # workers are up (persistent): count their CPU from here on
            workers = getattr(getattr(loader, "_iterator", None), "_workers", [])
            pids = [w.pid for w in workers]
            cpu0 = time.process_time() + _cpu_seconds(pids)
        t0, n = time.perf_counter(), 0
        for batch in loader:
            n += batch.images.shape[0]
        seconds.append(time.perf_counter() - t0)
        counts.append(n)
    cpu = time.process_time() + _cpu_seconds(pids) - cpu0
    if counts[0] == 0:
        raise ValueError("the training loader yielded no batch: more images than batch_size needed")
    steady = sum(counts[1:])
    cores = len(os.sched_getaffinity(0))
    return {
        "images_per_s": steady / sum(seconds[1:]),
        "first_epoch_images_per_s": counts[0] / seconds[0],
        "cpu_ms_per_image": 1e3 * cpu / steady,
        "cpu_bound_images_per_s": cores * steady / cpu,
        "batches_per_epoch": counts[0] // dm.hparams.batch_size,
        "num_workers": dm.hparams.num_workers,
        "effective_workers": loader.num_workers,
        "epochs": epochs,
    }


def run(
    root: Path,
    images: int,
    size: int,
    batch: int,
    workers: list[int],
    epochs: int,
    val: int = 64,
    test: int = 32,
    corrupt: int = 1,
) -> dict[str, Any]:
    """Generate (if absent) and prepare the data under ``root``, then measure the loader for
    each worker count; returns the JSON record."""
    if not (root / "dataset_coco.json").exists():
        write_synthetic_coco(root, train=images, val=val, test=test, size=size, corrupt=corrupt)
    result: dict[str, Any] = {}
    fresh = not any((root / f"prepared_{size}").glob("*_index.json"))  # time prepare once
    for w in workers:
        dm = CaptionDataModule(
            str(root),
            image_size=size,
            batch_size=batch,
            num_workers=w,
            persistent_workers=True,
        )
        if fresh:
            result.update(prepare(dm))
            fresh = False
        result[f"workers_{w}"] = measure_loader(dm, epochs)
        del dm
    return result


def main(argv: list[str] | None = None) -> None:
    shipped = shipped_loader_settings()
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=2000, help="training images to generate")
    p.add_argument("--size", type=int, default=shipped["image_size"])
    p.add_argument("--batch", type=int, default=shipped["batch_size"])
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[shipped["num_workers"]],
        help=f"data-loader worker counts to measure (shipped: {shipped['num_workers']})",
    )
    p.add_argument("--epochs", type=int, default=3, help="epochs per setting (>= 2)")
    p.add_argument("--root", default=None, help="data folder (kept); default a temporary one")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tmp = None if args.root else Path(tempfile.mkdtemp(prefix="privcam_bench_input_"))
    root = Path(args.root) if args.root else tmp / "coco"
    try:
        measured = run(root, args.images, args.size, args.batch, args.workers, args.epochs)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    shipped_key = f"workers_{shipped['num_workers']}"
    headline = measured.get(shipped_key, measured[f"workers_{args.workers[0]}"])
    print(
        json.dumps(
            {
                "benchmark": "input_pipeline",
                "cpu": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
                "affinity_cpus": len(os.sched_getaffinity(0)),
                "torch_threads": torch.get_num_threads(),
                "images": args.images,
                "size": args.size,
                "batch": args.batch,
                "shipped": shipped,
                "images_per_s": headline["images_per_s"],
                "target_images_per_s": TARGET_IMAGES_PER_S,
                "meets_target": headline["images_per_s"] >= TARGET_IMAGES_PER_S,
                **measured,
            }
        )
    )


if __name__ == "__main__":
    main()

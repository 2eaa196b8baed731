"""The input-pipeline benchmark's data generator and loader measurement (tiny sizes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from train import CaptionDataModule, available_cpus

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_input


def test_synthetic_coco_is_prepared_by_the_data_module(tmp_path):
    root = bench_input.write_synthetic_coco(
        tmp_path / "coco", train=12, val=3, test=2, size=16, corrupt=1
    )
    entries = json.loads((root / "dataset_coco.json").read_text())["images"]
    assert [e["split"] for e in entries].count("train") == 12
    assert all(len(e["sentences"]) == 5 for e in entries)
    sizes = {Image.open(root / "images" / e["filename"]).size for e in entries[1:]}
    assert len(sizes) > 1  # mixed sizes: prepare must resize
    result = bench_input.run(root, images=12, size=16, batch=4, workers=[0], epochs=2)
    assert result["prepare_images"] == 16 and result["prepare_skipped"] == 1  # one corrupt
    assert result["prepare_images_per_s"] > 0
    loader = result["workers_0"]
    assert loader["batches_per_epoch"] == 2 and loader["images_per_s"] > 0
    assert loader["cpu_ms_per_image"] > 0
    arr = np.load(root / "prepared_16" / "train_images.npy", mmap_mode="r")
    assert arr.shape == (11, 3, 16, 16) and arr.dtype == np.uint8
    # more workers than usable CPUs are capped (they only add contention)
    dm = CaptionDataModule(str(root), image_size=16, batch_size=4, num_workers=1000)
    assert dm.train_dataloader().num_workers == available_cpus() < 1000


def test_shipped_settings_are_the_coco_config():
    shipped = bench_input.shipped_loader_settings()
    assert shipped["batch_size"] == 64 and shipped["image_size"] == 256
    assert shipped["num_workers"] >= 1

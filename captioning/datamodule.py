"""Lightning data module over the prepared caption arrays, and the embedded data set on demand.

``CaptionDataModule`` reads a COCO/Karpathy-format root (``captioning.data``), builds the
vocabulary from the train captions, writes the resized uint8 arrays once (``prepare_data``) and
serves ``CaptionBatch`` loaders; with ``generate_embedded`` it first writes privcam's embedded
(synthetic) data set into an empty root.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch

from captioning.data import (
    SPLITS,
    CaptionDataset,
    collate_captions,
    ensure_prepared,
    load_records,
    read_json,
)
from captioning.vocab import Vocabulary

__all__ = ["CaptionDataModule", "available_cpus", "write_embedded"]

log = logging.getLogger("privcam.train")


class CaptionDataModule(L.LightningDataModule):
    """COCO/Karpathy-format caption data as prepared uint8 arrays.

    Args:
        root: data root with ``dataset_coco.json`` (Karpathy) and/or COCO caption files and
            images (``train2014/ val2014/ annotations/``).
        generate_embedded: if ``root`` holds no data set, generate privcam's embedded
            (synthetic) one there first, with the ``embedded_*`` sizes.
        image_size: square size of the prepared arrays = the scene size seen by the camera.
        batch_size: images per training batch (each with ``captions_per_image`` captions).
        max_eval_images: use only the first N images of val/test (fast validation).
    """

    def __init__(
        self,
        root: str = "data/embedded",
        generate_embedded: bool = False,
        embedded_train: int = 3000,
        embedded_val: int = 300,
        embedded_test: int = 300,
        embedded_image_size: int = 128,
        embedded_seed: int = 0,
        image_size: int = 256,
        prepared_dir: str | None = None,
        format: str = "auto",
        on_corrupt: str = "skip",
        batch_size: int = 32,
        eval_batch_size: int = 64,
        captions_per_image: int = 5,
        min_word_count: int = 5,
        max_caption_tokens: int = 16,
        max_eval_images: int | None = None,
        num_workers: int = 2,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        for name in (
            "image_size",
            "batch_size",
            "eval_batch_size",
            "captions_per_image",
            "min_word_count",
            "max_caption_tokens",
        ):
            if int(getattr(self.hparams, name)) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self.hparams, name)}")
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8 pixels, got {image_size}")
        if format not in ("auto", "karpathy", "coco"):
            raise ValueError(f"data.format must be 'auto', 'karpathy' or 'coco', got {format!r}")
        if max_eval_images is not None and max_eval_images < 1:
            raise ValueError(
                f"data.max_eval_images must be >= 1 (or null: every image), got {max_eval_images}"
            )
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        self.root = Path(root)
        if generate_embedded and not (self.root / "dataset_coco.json").exists():
            write_embedded(
                self.root,
                embedded_train,
                embedded_val,
                embedded_test,
                embedded_image_size,
                embedded_seed,
            )
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(
                f"data.root {self.root} is a file; pass the data set folder (dataset_coco.json, "
                "images) with --data.root"
            )
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"data.root {self.root} does not exist: pass --data.root /path/to/coco "
                "(train2014/ val2014/ annotations/ dataset_coco.json) or "
                "--data.generate_embedded true to create the embedded data set there"
            )
        self.prepared_dir = (
            Path(prepared_dir) if prepared_dir else self.root / f"prepared_{image_size}"
        )
        train_records = load_records(self.root, "train", format)
        self.vocab = Vocabulary.build(
            [c for r in train_records for c in r.captions], min_word_count, max_caption_tokens
        )
        self.vocab_size = len(self.vocab)
        self.datasets: dict[str, CaptionDataset] = {}
        self.test_split = "test"  # evaluate.py points test() at "val" with this

    def prepare_data(self) -> None:
        """Write the resized uint8 arrays once (rank 0); epochs then decode no image files."""
        for split in SPLITS:
            try:
                records = load_records(self.root, split, self.hparams.format)
            except FileNotFoundError:
                if split == "test":  # COCO files alone have no test split
                    continue
                raise
            # rebuilt when the images, image list or size changed; index only for captions
            ensure_prepared(
                records, self.prepared_dir, split, self.hparams.image_size, self.hparams.on_corrupt
            )
        self._prepared_checked = True

    def _dataset(self, split: str) -> CaptionDataset:
        if split not in self.datasets:
            if not getattr(self, "_prepared_checked", False):  # outside a Trainer
                self.prepare_data()
            index = read_json(self.prepared_dir / f"{split}_index.json", "a prepared split index")
            if int(index["size"]) != self.hparams.image_size:
                raise ValueError(
                    f"{self.prepared_dir} holds {index['size']}² images but data.image_size is "
                    f"{self.hparams.image_size}; set data.prepared_dir to another folder"
                )
            ds = CaptionDataset.from_prepared(
                self.prepared_dir,
                split,
                self.vocab,
                self.hparams.captions_per_image,
                seed=self.hparams.seed,
            )
            limit = self.hparams.max_eval_images
            if split != "train" and limit is not None and limit < len(ds):
                ds.records = ds.records[:limit]
                ds._encoded = ds._encoded[:limit]
            self.datasets[split] = ds
        return self.datasets[split]

    def references(self, split: str) -> dict[int, list[str]]:
        return self._dataset(split).references

    def scenes(self, split: str) -> dict[int, dict[str, Any]]:
        """image id -> ground-truth ``scene`` (embedded data set only; empty otherwise)."""
        extras = ((r.image_id, dict(r.extra)) for r in self._dataset(split).records)
        return {image_id: extra["scene"] for image_id, extra in extras if "scene" in extra}

    def _loader(self, split: str, train: bool) -> torch.utils.data.DataLoader:
        # more worker processes than usable CPUs only adds contention (benchmarks/bench_input.py:
        # 8 workers on 2 cores cost ~30 % more CPU per image than 2)
        workers = min(self.hparams.num_workers, available_cpus())
        if workers < self.hparams.num_workers and train:
            log.info(
                "data.num_workers=%d capped at the %d CPUs this process may use",
                self.hparams.num_workers,
                workers,
            )
        return torch.utils.data.DataLoader(
            self._dataset(split),
            batch_size=self.hparams.batch_size if train else self.hparams.eval_batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=workers,
            collate_fn=collate_captions,
            pin_memory=self.hparams.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.hparams.persistent_workers and workers > 0,
        )

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.test_split, False)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a cgroup/SLURM allocation)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def write_embedded(root: Path, train: int, val: int, test: int, size: int, seed: int) -> None:
    """Write the embedded data set (``captioning.synthetic``) into ``root`` atomically: built in
    a sibling temporary folder, then renamed (a DDP rank that loses the race drops its copy)."""
    from captioning.synthetic import write_dataset

    tmp = root.with_name(f"{root.name}.tmp{os.getpid()}")
    log.info("generating the embedded data set in %s", root)
    write_dataset(tmp, seed=seed, train=train, val=val, test=test, size=size)
    try:
        tmp.rename(root)
    except OSError:  # another process (DDP rank) finished first: identical content
        shutil.rmtree(tmp, ignore_errors=True)

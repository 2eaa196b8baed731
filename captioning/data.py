"""Caption data: the Dataset over prepared arrays (or image files), batches and collation, and
``python -m captioning.data prepare``; re-exports the reader (``captioning.coco``), the image
decoder (``captioning.images``) and the prepared arrays (``captioning.prepared``).

``python -m captioning.data prepare --root R --size 256`` writes the prepared arrays of every
split (see ``captioning.prepared``).

Captions per image: COCO images have 5 captions, a few 6-7. :class:`CaptionDataset` with
``captions_per_image=5`` *samples* 5 distinct captions per image each time an item is read
(so every caption is used across epochs) and keeps all of them when an image has 5 or fewer;
``captions_per_image=None`` keeps every caption (evaluation). :func:`collate_captions` stacks
the B images once and concatenates all their captions with a ``caption_to_image`` index so the
CNN runs once per image and its features are expanded after the encoder.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from captioning.coco import (
    KARPATHY_FILE,
    SPLITS,
    CaptionDataError,
    ImageRecord,
    load_records,
    read_coco_captions,
    read_json,
    read_karpathy_split,
)
from captioning.images import IMAGE_SUFFIXES, CorruptImageError, load_image, to_rgb8
from captioning.prepared import (
    OnCorrupt,
    ensure_prepared,
    prepare_split,
    prepared_state,
    records_fingerprint,
)
from captioning.vocab import Vocabulary
from optics.cli_config import ArgumentParser
from optics.cli_errors import check_output_dir, positive_int, run_cli

__all__ = [
    "IMAGE_SUFFIXES",
    "KARPATHY_FILE",
    "SPLITS",
    "CaptionBatch",
    "CaptionDataError",
    "CaptionDataset",
    "CorruptImageError",
    "ImageRecord",
    "OnCorrupt",
    "collate_captions",
    "ensure_prepared",
    "load_image",
    "load_records",
    "prepare_split",
    "prepared_state",
    "read_coco_captions",
    "read_json",
    "read_karpathy_split",
    "records_fingerprint",
    "to_rgb8",
]

logger = logging.getLogger(__name__)


@dataclass
class CaptionBatch:
    """A batch of B images with all their N captions.

    Attributes:
        images: ``(B, 3, H, W)`` uint8 (use :meth:`float_images` for [0, 1] floats).
        captions: ``(N, T)`` long, ``<bos> ... <eos>`` padded with 0.
        caption_to_image: ``(N,)`` long, index of each caption's image in ``images``.
        image_ids: ``(B,)`` long data set image ids.
    """

    images: torch.Tensor
    captions: torch.Tensor
    caption_to_image: torch.Tensor
    image_ids: torch.Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> CaptionBatch:
        return CaptionBatch(
            *(
                t.to(device, non_blocking=non_blocking)
                for t in (self.images, self.captions, self.caption_to_image, self.image_ids)
            )
        )

    def float_images(self) -> torch.Tensor:
        """``(B, 3, H, W)`` float32 in [0, 1]."""
        return self.images.float().div_(255.0)

    def pin_memory(self) -> CaptionBatch:
        return CaptionBatch(
            *(
                t.pin_memory()
                for t in (self.images, self.captions, self.caption_to_image, self.image_ids)
            )
        )


class CaptionDataset(Dataset):
    """Images (prepared arrays or raw files) with tokenised captions.

    Items are ``(image (3, H, W) uint8, captions (K, T) long, image_id int)`` or ``None`` for a
    skipped corrupt raw image (dropped by :func:`collate_captions`).

    Args:
        records: image records (their captions are the references).
        vocab: vocabulary used to encode captions.
        images: optional prepared uint8 array ``(N, 3, S, S)`` aligned with ``records``; when
            None images are decoded from ``record.path`` (resized to ``image_size``).
        image_size: size for raw files (None keeps each file's size: batch size 1 only).
        captions_per_image: captions per item, sampled without replacement when an image has
            more (None: all).
        on_corrupt: raw mode only: ``"skip"`` (item is None, counted in ``num_skipped``) or
            ``"fail"``.
        seed: seed of the caption sampler (each epoch draws different captions).
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        vocab: Vocabulary,
        images: np.ndarray | None = None,
        image_size: int | None = 256,
        captions_per_image: int | None = 5,
        on_corrupt: OnCorrupt = "fail",
        seed: int = 0,
    ) -> None:
        if images is not None and len(images) != len(records):
            raise ValueError(f"{len(images)} prepared images for {len(records)} records")
        if captions_per_image is not None and captions_per_image < 1:
            raise ValueError(f"captions_per_image must be >= 1 or None, got {captions_per_image}")
        self.records = list(records)
        self.vocab = vocab
        self.images = images
        self.image_size = image_size
        self.captions_per_image = captions_per_image
        self.on_corrupt = on_corrupt
        self.num_skipped = 0
        self._rng = np.random.default_rng(seed)
        self._encoded = [vocab.encode_batch(r.captions) for r in self.records]

    @classmethod
    def from_prepared(
        cls,
        prepared_dir: str | Path,
        split: str,
        vocab: Vocabulary,
        captions_per_image: int | None = 5,
        seed: int = 0,
    ) -> CaptionDataset:
        """Open ``<prepared_dir>/<split>_images.npy`` (memory-mapped) and its index json."""
        prepared_dir = Path(prepared_dir)
        index = read_json(
            prepared_dir / f"{split}_index.json",
            "an index written by `python -m captioning.data prepare`",
        )
        array_path = prepared_dir / f"{split}_images.npy"
        if not array_path.is_file():
            raise FileNotFoundError(
                f"{array_path}: not found; run `python -m captioning.data prepare` first"
            )
        try:
            images = np.load(array_path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise CaptionDataError(
                f"{array_path}: unreadable prepared array ({err}); delete it "
                "and run `python -m captioning.data prepare` again"
            ) from err
        size = int(index["size"])
        if images.shape != (len(index["images"]), 3, size, size):
            raise CaptionDataError(
                f"{array_path} holds {images.shape} but its index lists {len(index['images'])} "
                f"images of {size}²; the split was not prepared completely: run "
                "`python -m captioning.data prepare --force` (or delete the folder)"
            )
        records = [
            ImageRecord(
                int(e["image_id"]),
                Path(e["file"]),
                split,
                tuple(e["captions"]),
                tuple(
                    sorted(
                        (k, v) for k, v in e.items() if k not in ("image_id", "file", "captions")
                    )
                ),
            )
            for e in index["images"]
        ]
        return cls(
            records,
            vocab,
            images=images,
            image_size=int(index["size"]),
            captions_per_image=captions_per_image,
            seed=seed,
        )

    def __len__(self) -> int:
        return len(self.records)

    @property
    def references(self) -> dict[int, list[str]]:
        """image id -> raw reference captions (for the metrics)."""
        return {r.image_id: list(r.captions) for r in self.records}

    def _image(self, index: int) -> torch.Tensor | None:
        if self.images is not None:
            return torch.from_numpy(np.array(self.images[index], dtype=np.uint8))
        rec = self.records[index]
        try:
            img = load_image(rec.path, self.image_size)
        except CorruptImageError:
            if self.on_corrupt == "fail":
                raise
            self.num_skipped += 1
            logger.warning(
                "skipping corrupt image %s (%d skipped so far)", rec.path.name, self.num_skipped
            )
            return None
        return torch.from_numpy(img).permute(2, 0, 1).contiguous()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        image = self._image(index)
        if image is None:
            return None
        caps = self._encoded[index]
        k = self.captions_per_image
        if k is not None and caps.shape[0] > k:
            pick = np.sort(self._rng.choice(caps.shape[0], size=k, replace=False))
            caps = caps[torch.from_numpy(pick)]
        return image, caps, self.records[index].image_id


def collate_captions(
    items: Sequence[tuple[torch.Tensor, torch.Tensor, int] | None],
) -> CaptionBatch:
    """Stack B images once and concatenate their captions (N = sum of captions per image)."""
    items = [it for it in items if it is not None]
    if not items:
        raise CaptionDataError("batch is empty (every image in it was skipped as corrupt)")
    images = torch.stack([it[0] for it in items])
    length = max(it[1].shape[1] for it in items)
    caps = [torch.nn.functional.pad(it[1], (0, length - it[1].shape[1])) for it in items]
    counts = torch.tensor([c.shape[0] for c in caps])
    caption_to_image = torch.repeat_interleave(torch.arange(len(items)), counts)
    image_ids = torch.tensor([it[2] for it in items], dtype=torch.long)
    return CaptionBatch(images, torch.cat(caps), caption_to_image, image_ids)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def _main(argv: list[str]) -> int:
    parser = ArgumentParser(
        prog="python -m captioning.data", description=__doc__, raw_description=True, config=False
    )
    sub = parser.add_subcommands(dest="command", required=True)
    prep = ArgumentParser(
        prog="python -m captioning.data prepare",
        description="write resized uint8 arrays per split",
    )
    prep.add_argument("--root", required=True, help="data root (Karpathy and/or COCO files)")
    prep.add_argument(
        "--size", type=positive_int, default=256, help="square image size in pixels (>= 8)"
    )
    prep.add_argument("--out", default=None, help="output folder (default <root>/prepared_<size>)")
    prep.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    prep.add_argument("--format", default="auto", choices=["auto", "karpathy", "coco"])
    prep.add_argument("--on-corrupt", default="skip", choices=["skip", "fail"])
    prep.add_argument(
        "--force",
        action="store_true",
        help="rebuild splits that are already prepared and up to date",
    )
    sub.add_subcommand("prepare", prep, help="write resized uint8 arrays per split")
    args = parser.parse_args(argv).prepare
    if args.size < 8:  # positive_int checks >= 1; the smallest image the camera models is 8
        prep.error(f"argument --size: must be >= 8 pixels, got {args.size}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = Path(args.out) if args.out else Path(args.root) / f"prepared_{args.size}"
    todo = []
    for split in args.splits:  # read every annotation file before decoding any image
        try:
            todo.append((split, load_records(args.root, split, args.format)))
        except FileNotFoundError as err:
            if split == "test" and Path(args.root).is_dir():
                logger.warning("skipping split test: %s", err)
                continue
            raise
    check_output_dir(out, "--out")
    for split, records in todo:
        state = "stale" if args.force else prepared_state(records, out, split, args.size)[0]
        index = ensure_prepared(records, out, split, args.size, args.on_corrupt, args.force)
        n = len(json.loads(index.read_text())["images"])
        done = "up to date" if state == "current" else "->"
        print(f"{split}: {n} images {done} {out / f'{split}_images.npy'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m captioning.data prepare ...``; errors print one line (exit status 2)."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

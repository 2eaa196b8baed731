"""Caption data: COCO / Karpathy split files, image preparation, Dataset and collation.

Two annotation formats are read, for COCO 2014 and for any user data set written the same way:

* **Karpathy split json** (``dataset_coco.json``): ``{"images": [{"filepath", "filename",
  "split", "imgid", "cocoid"?, "sentences": [{"raw", "tokens"}]}]}``. Image files are
  ``<root>/<filepath>/<filename>``. Split ``"restval"`` is merged into ``"train"``.
* **COCO captions json** (``annotations/captions_{train,val}2014.json``), read with
  pycocotools: ``{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}``.
  Image files are ``<image_dir>/<file_name>`` (``<root>/<name>2014/`` for COCO, else
  ``<root>/images/``).

:func:`load_records` picks the format for a root: the Karpathy file when it exists (COCO's
standard train+restval / val / test split), the COCO caption files otherwise.

``python -m captioning.data prepare --root R --size 256`` decodes every image once, resizes it
to ``size x size`` (bilinear with antialiasing; the aspect ratio is *not* kept, as in most COCO
captioning code) and writes per split ``<out>/<split>_images.npy`` (uint8 ``(N, 3, S, S)``, read
back as a memory map) plus ``<out>/<split>_index.json`` (image ids, files, captions, skipped
files), so training epochs decode no JPEGs.

Captions per image: COCO images have 5 captions, a few 6-7. :class:`CaptionDataset` with
``captions_per_image=5`` *samples* 5 distinct captions per image each time an item is read
(so every caption is used across epochs) and keeps all of them when an image has 5 or fewer;
``captions_per_image=None`` keeps every caption (evaluation). :func:`collate_captions` stacks
the B images once and concatenates all their captions with a ``caption_to_image`` index so the
CNN runs once per image and its features are expanded after the encoder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from captioning.vocab import Vocabulary
from optics.cli_errors import ArgumentParser, check_output_dir, positive_int, run_cli

__all__ = [
    "CaptionBatch",
    "CaptionDataError",
    "CaptionDataset",
    "CorruptImageError",
    "ImageRecord",
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

SPLITS = ("train", "val", "test")
KARPATHY_FILE = "dataset_coco.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
OnCorrupt = Literal["skip", "fail"]


class CaptionDataError(ValueError):
    """A caption/annotation file is missing fields or malformed (message names the file)."""


class CorruptImageError(OSError):
    """An image file cannot be decoded (message names the file)."""


@dataclass(frozen=True)
class ImageRecord:
    """One image and its reference captions.

    Attributes:
        image_id: COCO id (``cocoid``) or the data set's image id.
        path: image file.
        split: ``"train"``, ``"val"`` or ``"test"`` (``"restval"`` is reported as train).
        captions: raw reference captions (usually 5).
        extra: other fields of the annotation entry (e.g. ``faces`` for the synthetic set).
    """

    image_id: int
    path: Path
    split: str
    captions: tuple[str, ...]
    extra: tuple[tuple[str, Any], ...] = ()

    def info(self) -> dict[str, Any]:
        return dict(self.extra)


# --------------------------------------------------------------------------------------------
# annotation files
# --------------------------------------------------------------------------------------------
def read_json(path: str | Path, what: str) -> Any:
    """Load a JSON file; missing or malformed files raise errors naming the path and ``what``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (expected {what})")
    try:
        with path.open("rb") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CaptionDataError(f"{path}: malformed JSON ({err}); expected {what}") from err


def _require(entry: Any, keys: Sequence[str], path: Path, where: str, expected: str) -> None:
    if not isinstance(entry, dict):
        raise CaptionDataError(f"{path}: {where} is {type(entry).__name__}, expected {expected}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise CaptionDataError(f"{path}: {where} lacks {missing}; expected {expected}")


_KARPATHY_EXPECTED = (
    'a Karpathy split file {"images": [{"filepath", "filename", "split", "imgid", '
    '"cocoid"?, "sentences": [{"raw", "tokens"}]}]}'
)
_COCO_EXPECTED = (
    'a COCO captions file {"images": [{"id", "file_name"}], '
    '"annotations": [{"image_id", "caption"}]}'
)


def read_karpathy_split(
    json_path: str | Path,
    image_root: str | Path | None = None,
    splits: Sequence[str] | None = None,
) -> list[ImageRecord]:
    """Read a Karpathy-style split file.

    Args:
        json_path: the split file (``dataset_coco.json`` or the same format).
        image_root: folder that holds ``<filepath>/<filename>``; default the file's folder.
        splits: splits to keep (``"train"`` includes ``"restval"``); default all.
    """
    json_path = Path(json_path)
    image_root = Path(image_root) if image_root is not None else json_path.parent
    data = read_json(json_path, _KARPATHY_EXPECTED)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CaptionDataError(f"{json_path}: no 'images' list; expected {_KARPATHY_EXPECTED}")
    wanted = set(splits) if splits is not None else None
    records = []
    found: dict[str, int] = {}
    for i, entry in enumerate(data["images"]):
        _require(entry, ["filename", "split", "sentences"], json_path, f"images[{i}]",
                 _KARPATHY_EXPECTED)
        found[str(entry["split"])] = found.get(str(entry["split"]), 0) + 1
        split = "train" if entry["split"] == "restval" else str(entry["split"])
        if wanted is not None and split not in wanted:
            continue
        sentences = entry["sentences"]
        if not isinstance(sentences, list) or not sentences:
            raise CaptionDataError(f"{json_path}: images[{i}] ({entry['filename']}) has no "
                                   f"sentences; expected {_KARPATHY_EXPECTED}")
        captions = []
        for j, sent in enumerate(sentences):
            if isinstance(sent, dict) and "raw" in sent:
                captions.append(str(sent["raw"]))
            elif isinstance(sent, dict) and "tokens" in sent:
                captions.append(" ".join(sent["tokens"]))
            else:
                raise CaptionDataError(f"{json_path}: images[{i}].sentences[{j}] lacks 'raw'; "
                                       f"expected {_KARPATHY_EXPECTED}")
        image_id = int(entry.get("cocoid", entry.get("imgid", i)))
        skip = {"filepath", "filename", "split", "sentences", "sentids", "imgid", "cocoid"}
        extra = tuple(sorted((k, v) for k, v in entry.items() if k not in skip))
        path = image_root / str(entry.get("filepath", "")) / str(entry["filename"])
        records.append(ImageRecord(image_id, path, split, tuple(captions), extra))
    unknown = {k: v for k, v in sorted(found.items()) if k not in (*SPLITS, "restval")}
    if unknown:
        logger.warning(
            "%s: %d image(s) have unknown split names %s and are in no split; valid split "
            "names: train, restval, val, test (fix the 'split' fields)",
            json_path, sum(unknown.values()), unknown)
    if wanted is not None and not records:
        raise CaptionDataError(
            f"{json_path}: no images in split(s) {sorted(wanted)}; split names found: "
            f"{dict(sorted(found.items())) or 'none'} (valid: train, restval, val, test)")
    return records


def read_coco_captions(
    json_path: str | Path,
    image_dir: str | Path,
    split: str = "train",
) -> list[ImageRecord]:
    """Read a COCO captions file with pycocotools; every image gets ``split``.

    Args:
        json_path: e.g. ``annotations/captions_val2014.json``.
        image_dir: folder holding the ``file_name`` of each image.
    """
    from pycocotools.coco import COCO

    json_path, image_dir = Path(json_path), Path(image_dir)
    data = read_json(json_path, _COCO_EXPECTED)
    if not isinstance(data, dict):
        raise CaptionDataError(f"{json_path}: top level is not an object; "
                               f"expected {_COCO_EXPECTED}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise CaptionDataError(f"{json_path}: no '{key}' list; expected {_COCO_EXPECTED}")
    for i, img in enumerate(data["images"]):
        _require(img, ["id", "file_name"], json_path, f"images[{i}]", _COCO_EXPECTED)
    ids = {img["id"] for img in data["images"]}
    for i, ann in enumerate(data["annotations"]):
        _require(ann, ["image_id", "caption"], json_path, f"annotations[{i}]", _COCO_EXPECTED)
        if ann["image_id"] not in ids:
            raise CaptionDataError(f"{json_path}: annotations[{i}] refers to image_id "
                                   f"{ann['image_id']} which is not in 'images'")
        ann.setdefault("id", i)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    records = []
    for image_id in sorted(coco.getImgIds()):
        img = coco.loadImgs(image_id)[0]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        if not anns:
            logger.warning("%s: image %s has no captions; skipped", json_path, image_id)
            continue
        captions = tuple(str(a["caption"]) for a in sorted(anns, key=lambda a: a["id"]))
        skip = {"id", "file_name"}
        extra = tuple(sorted((k, v) for k, v in img.items() if k not in skip))
        records.append(ImageRecord(int(image_id), image_dir / img["file_name"], split,
                                   captions, extra))
    return records


def load_records(root: str | Path, split: str, fmt: str = "auto") -> list[ImageRecord]:
    """Records of one split under a data root.

    Args:
        root: folder holding ``dataset_coco.json`` and/or ``annotations/captions_*2014.json``.
        split: ``"train"`` (Karpathy train + restval), ``"val"`` or ``"test"``.
        fmt: ``"karpathy"``, ``"coco"`` or ``"auto"`` (Karpathy when its file exists). With
            COCO files only, ``val`` reads ``captions_val2014.json`` and ``test`` is unavailable.
    """
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} is not a folder (expected {KARPATHY_FILE} "
                                "and/or annotations/captions_{train,val}2014.json inside)")
    karpathy = root / KARPATHY_FILE
    if fmt not in ("auto", "karpathy", "coco"):
        raise ValueError(f"fmt must be 'auto', 'karpathy' or 'coco', got {fmt!r}")
    if fmt == "karpathy" or (fmt == "auto" and karpathy.exists()):
        records = read_karpathy_split(karpathy, root, splits=[split])
    else:
        if split == "test":
            raise FileNotFoundError(f"{karpathy}: not found; the test split needs the Karpathy "
                                    "split file (COCO caption files only give train and val)")
        ann = root / "annotations" / f"captions_{split}2014.json"
        if not ann.exists() and fmt == "auto":
            raise FileNotFoundError(f"{root}: neither {KARPATHY_FILE} nor {ann} exists; expected "
                                    "a Karpathy split file or COCO caption files")
        image_dir = root / f"{split}2014"
        if not image_dir.is_dir():
            image_dir = root / "images"
        records = read_coco_captions(ann, image_dir, split)
    if not records:
        raise CaptionDataError(f"{root}: split {split!r} is empty")
    return records


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------
def load_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """Decode an image file to uint8 ``(H, W, 3)`` RGB, optionally resized to ``size x size``.

    Raises:
        FileNotFoundError: the file does not exist (message names it).
        CorruptImageError: the file cannot be decoded (message names it).
    """
    path = Path(path)
    if path.is_dir():
        raise CorruptImageError(f"image {path} is a directory, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} not found")
    try:
        with Image.open(path) as im:
            im = to_rgb8(im, path.name)
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
            return np.asarray(im, dtype=np.uint8).copy()
    except Image.DecompressionBombError as err:
        raise CorruptImageError(
            f"image {path.name} ({path}) is too large to decode safely ({err}); skip it or "
            "raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptImageError(f"cannot decode image {path.name} ({path}): {err}") from err


def to_rgb8(im: Image.Image, name: str = "image") -> Image.Image:
    """An 8-bit RGB copy of a PIL image; 16-bit and 32-bit grey levels are *scaled* to 0..255.

    ``Image.convert("RGB")`` clips high-bit-depth grey images (a 16-bit PNG becomes almost all
    255); here 16-bit values are divided by 257 (65535 -> 255) and float images in [0, 1] are
    multiplied by 255. The dropped precision is logged.
    """
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        if mode == "F" and arr.size and np.nanmax(arr) <= 1.0:
            scale, bits = 255.0, "floating-point"
        elif mode.startswith("I;16") or (arr.size and arr.max() > 255):
            scale, bits = 255.0 / 65535.0, "16-bit"
            if arr.size and arr.max() > 65535:
                scale, bits = 255.0 / float(arr.max()), "32-bit"
        else:
            scale, bits = 1.0, "8-bit range"
        if scale != 1.0:
            logger.info("%s: %s grey levels scaled to 8 bits (precision dropped)", name, bits)
        grey = np.clip(np.nan_to_num(arr * scale) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return im.convert("RGB")


def records_fingerprint(records: Sequence[ImageRecord], size: int) -> dict[str, str]:
    """What a prepared split is built from: ``{"images": ..., "captions": ...}`` digests.

    ``images`` covers the image size, the image ids and files and each file's size and
    modification time (a replaced or repaired image changes it); ``captions`` covers the
    reference captions and the other annotation fields.
    """
    images, captions = hashlib.sha256(f"size={size}".encode()), hashlib.sha256()
    for r in records:
        try:
            st = r.path.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        images.update(json.dumps([r.image_id, str(r.path), stamp]).encode())
        captions.update(json.dumps([r.image_id, list(r.captions), list(r.extra)],
                                   default=str).encode())
    return {"images": images.hexdigest(), "captions": captions.hexdigest()}


def _paths(out_dir: Path, split: str) -> tuple[Path, Path]:
    return out_dir / f"{split}_images.npy", out_dir / f"{split}_index.json"


def prepared_state(
    records: Sequence[ImageRecord], out_dir: str | Path, split: str, size: int
) -> tuple[str, str]:
    """Whether ``out_dir`` holds an up-to-date prepared ``split`` of ``records``.

    Returns ``(state, reason)`` with state ``"current"``, ``"captions"`` (images current,
    captions or annotations changed: only the index needs rewriting) or ``"stale"`` (missing,
    incomplete, built from other images or another size, or written before fingerprints).
    """
    array_path, index_path = _paths(Path(out_dir), split)
    if not index_path.is_file() or not array_path.is_file():
        return "stale", f"{index_path.name} or {array_path.name} missing"
    try:
        index = json.loads(index_path.read_text())
        shape = np.load(array_path, mmap_mode="r").shape
    except (OSError, ValueError) as err:
        return "stale", f"unreadable ({err})"
    built = index.get("fingerprint") if isinstance(index, dict) else None
    if not isinstance(built, dict):
        return "stale", "index written without a fingerprint (older privcam)"
    if int(index.get("size", -1)) != size or tuple(shape) != (len(index["images"]), 3, size,
                                                            size):
        return "stale", f"array {tuple(shape)} does not match its index or size {size}"
    now = records_fingerprint(records, size)
    if built.get("images") != now["images"]:
        return "stale", "the image list or image files changed since it was prepared"
    if built.get("captions") != now["captions"]:
        return "captions", "captions or annotations changed since it was prepared"
    return "current", "up to date"


def _write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _index(split: str, size: int, kept: Sequence[ImageRecord], skipped: list[str],
           fingerprint: dict[str, str]) -> dict[str, Any]:
    return {
        "split": split,
        "size": size,
        "images": [
            {"image_id": r.image_id, "file": str(r.path), "captions": list(r.captions),
             **r.info()}
            for r in kept
        ],
        "skipped": skipped,
        "fingerprint": fingerprint,
    }


def ensure_prepared(
    records: Sequence[ImageRecord],
    out_dir: str | Path,
    split: str,
    size: int = 256,
    on_corrupt: OnCorrupt = "skip",
    force: bool = False,
) -> Path:
    """Prepare ``split`` unless ``out_dir`` already holds it up to date; returns the index path.

    A cache built from other images (repaired or replaced files, another image list or size)
    is rebuilt; when only captions changed the index alone is rewritten.
    """
    out_dir = Path(out_dir)
    state, reason = ("stale", "--force") if force else prepared_state(records, out_dir, split,
                                                                       size)
    index_path = _paths(out_dir, split)[1]
    if state == "current":
        return index_path
    if state == "captions":
        old = json.loads(index_path.read_text())
        by_key = {(r.image_id, str(r.path)): r for r in records}
        kept = [by_key[(int(e["image_id"]), e["file"])] for e in old["images"]]
        logger.warning("%s: %s; rewriting %s", out_dir, reason, index_path.name)
        _write_json_atomic(index_path, _index(split, size, kept, old.get("skipped", []),
                                              records_fingerprint(records, size)))
        return index_path
    if index_path.exists():
        logger.warning("%s: prepared %s split is out of date (%s); rebuilding it", out_dir,
                       split, reason)
    return prepare_split(records, out_dir, split, size, on_corrupt)


def prepare_split(
    records: Sequence[ImageRecord],
    out_dir: str | Path,
    split: str,
    size: int = 256,
    on_corrupt: OnCorrupt = "skip",
) -> Path:
    """Write resized uint8 images ``(N, 3, size, size)`` and an index json for one split.

    Returns the index json path. Corrupt images are skipped and counted (``on_corrupt="skip"``,
    file names listed in the index under ``"skipped"``) or raise :class:`CorruptImageError`.

    Both files are written to temporary files first and moved into place (the old index is
    removed before the new array replaces the old one), so a run killed at any point leaves
    either the previous split or no index at all — never an index beside a half-written array.
    The index records :func:`records_fingerprint` so a stale cache is recognised.
    """
    if on_corrupt not in ("skip", "fail"):
        raise ValueError(f"on_corrupt must be 'skip' or 'fail', got {on_corrupt!r}")
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    array_path, index_path = _paths(out_dir, split)
    for stale in out_dir.glob(f".{split}_images.npy.tmp-*"):  # left by a killed run
        stale.unlink(missing_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp_path = out_dir / f".{split}_images.npy.tmp-{tag}"
    final_tmp = out_dir / f".{split}_images.npy.tmp-{tag}-final"
    fingerprint = records_fingerprint(records, size)
    start = time.perf_counter()
    try:
        arr = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.uint8,
                                        shape=(len(records), 3, size, size))
        kept, skipped = [], []
        for rec in records:
            try:
                img = load_image(rec.path, size)
            except (CorruptImageError, FileNotFoundError) as err:
                if on_corrupt == "fail":
                    raise
                logger.warning("skipping %s", err)
                skipped.append(rec.path.name)
                continue
            arr[len(kept)] = img.transpose(2, 0, 1)
            kept.append(rec)
        arr.flush()
        del arr
        if len(kept) == len(records):
            final_tmp = tmp_path
        else:
            final = np.lib.format.open_memmap(final_tmp, mode="w+", dtype=np.uint8,
                                              shape=(len(kept), 3, size, size))
            src = np.load(tmp_path, mmap_mode="r")
            final[:] = src[: len(kept)]
            final.flush()
            del final, src
        index_path.unlink(missing_ok=True)  # killed from here on: no index, rebuilt next time
        os.replace(final_tmp, array_path)
        _write_json_atomic(index_path, _index(split, size, kept, skipped, fingerprint))
    finally:
        tmp_path.unlink(missing_ok=True)
        final_tmp.unlink(missing_ok=True)
    if skipped:
        logger.warning("%s: skipped %d corrupt or missing image(s) of %d: %s", split,
                       len(skipped), len(records), ", ".join(skipped[:10])
                       + (" ..." if len(skipped) > 10 else ""))
    seconds = time.perf_counter() - start
    logger.info("%s: %d images prepared at %d² in %.1f s (%.0f images/s)", split, len(records),
                size, seconds, len(records) / max(seconds, 1e-9))
    return index_path


# --------------------------------------------------------------------------------------------
# Dataset and collation
# --------------------------------------------------------------------------------------------
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
        return CaptionBatch(*(t.to(device, non_blocking=non_blocking) for t in (
            self.images, self.captions, self.caption_to_image, self.image_ids)))

    def float_images(self) -> torch.Tensor:
        """``(B, 3, H, W)`` float32 in [0, 1]."""
        return self.images.float().div_(255.0)

    def pin_memory(self) -> CaptionBatch:
        return CaptionBatch(*(t.pin_memory() for t in (
            self.images, self.captions, self.caption_to_image, self.image_ids)))


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
        index = read_json(prepared_dir / f"{split}_index.json",
                          "an index written by `python -m captioning.data prepare`")
        array_path = prepared_dir / f"{split}_images.npy"
        if not array_path.is_file():
            raise FileNotFoundError(f"{array_path}: not found; run `python -m captioning.data "
                                    f"prepare` first")
        try:
            images = np.load(array_path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise CaptionDataError(f"{array_path}: unreadable prepared array ({err}); delete it "
                                   "and run `python -m captioning.data prepare` again") from err
        size = int(index["size"])
        if images.shape != (len(index["images"]), 3, size, size):
            raise CaptionDataError(
                f"{array_path} holds {images.shape} but its index lists {len(index['images'])} "
                f"images of {size}²; the split was not prepared completely: run "
                "`python -m captioning.data prepare --force` (or delete the folder)")
        records = [
            ImageRecord(int(e["image_id"]), Path(e["file"]), split, tuple(e["captions"]),
                        tuple(sorted((k, v) for k, v in e.items()
                                     if k not in ("image_id", "file", "captions"))))
            for e in index["images"]
        ]
        return cls(records, vocab, images=images, image_size=int(index["size"]),
                   captions_per_image=captions_per_image, seed=seed)

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
            logger.warning("skipping corrupt image %s (%d skipped so far)", rec.path.name,
                           self.num_skipped)
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
    parser = ArgumentParser(prog="python -m captioning.data", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="write resized uint8 arrays per split")
    prep.add_argument("--root", required=True, help="data root (Karpathy and/or COCO files)")
    prep.add_argument("--size", type=positive_int, default=256,
                      help="square image size in pixels (>= 8)")
    prep.add_argument("--out", default=None, help="output folder (default <root>/prepared_<size>)")
    prep.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    prep.add_argument("--format", default="auto", choices=["auto", "karpathy", "coco"])
    prep.add_argument("--on-corrupt", default="skip", choices=["skip", "fail"])
    prep.add_argument("--force", action="store_true",
                      help="rebuild splits that are already prepared and up to date")
    args = parser.parse_args(argv)
    if args.size < 8:  # positive_int checks >= 1; the smallest image the camera models is 8
        parser.error(f"argument --size: must be >= 8 pixels, got {args.size}")
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

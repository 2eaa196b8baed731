"""Prepared arrays: every image of a split decoded once, resized to ``size x size`` (bilinear
with antialiasing; the aspect ratio is *not* kept, as in most COCO captioning code) and written
as ``<out>/<split>_images.npy`` (uint8 ``(N, 3, S, S)``, read back as a memory map) plus
``<out>/<split>_index.json`` (image ids, files, captions, skipped files, and a fingerprint of
what it was built from), so training epochs decode no JPEGs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from captioning.coco import ImageRecord
from captioning.images import CorruptImageError, load_image

__all__ = ["OnCorrupt", "ensure_prepared", "prepare_split", "prepared_state",
           "records_fingerprint"]  # fmt: skip

logger = logging.getLogger("captioning.data")  # one logger for the data pipeline

OnCorrupt = Literal["skip", "fail"]


def records_fingerprint(records: Sequence[ImageRecord], size: int) -> dict[str, str]:
    """What a prepared split is built from: ``{"images": ..., "captions": ...}`` digests.

    ``images`` covers the image size, the image ids and files (as absolute paths: the same
    data root spelled relative or absolute is the same cache) and each file's size and
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
        images.update(json.dumps([r.image_id, os.path.abspath(r.path), stamp]).encode())
        captions.update(
            json.dumps([r.image_id, list(r.captions), list(r.extra)], default=str).encode()
        )
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
    if int(index.get("size", -1)) != size or tuple(shape) != (len(index["images"]), 3, size, size):
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


def _index(
    split: str,
    size: int,
    kept: Sequence[ImageRecord],
    skipped: list[str],
    fingerprint: dict[str, str],
) -> dict[str, Any]:
    return {
        "split": split,
        "size": size,
        "images": [
            {"image_id": r.image_id, "file": str(r.path), "captions": list(r.captions), **r.info()}
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
    state, reason = ("stale", "--force") if force else prepared_state(records, out_dir, split, size)
    index_path = _paths(out_dir, split)[1]
    if state == "current":
        return index_path
    if state == "captions":
        old = json.loads(index_path.read_text())
        # the images are current, so the ids are the ones indexed (files may be spelled
        # otherwise: relative then, absolute now)
        by_id = {r.image_id: r for r in records}
        kept = [by_id[int(e["image_id"])] for e in old["images"]]
        logger.warning("%s: %s; rewriting %s", out_dir, reason, index_path.name)
        _write_json_atomic(
            index_path,
            _index(split, size, kept, old.get("skipped", []), records_fingerprint(records, size)),
        )
        return index_path
    if index_path.exists():
        logger.warning(
            "%s: prepared %s split is out of date (%s); rebuilding it", out_dir, split, reason
        )
    return prepare_split(records, out_dir, split, size, on_corrupt)


def _write_images(
    records: Sequence[ImageRecord], tmp_path: Path, final_tmp: Path, size: int, on_corrupt: str
) -> tuple[Path, list[ImageRecord], list[str]]:
    """Decode every record into a uint8 memmap at ``tmp_path`` (then, if some were skipped, a
    shorter copy at ``final_tmp``); returns the finished file, the kept records and the skipped
    file names."""
    arr = np.lib.format.open_memmap(
        tmp_path, mode="w+", dtype=np.uint8, shape=(len(records), 3, size, size)
    )
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
        return tmp_path, kept, skipped
    final = np.lib.format.open_memmap(
        final_tmp, mode="w+", dtype=np.uint8, shape=(len(kept), 3, size, size)
    )
    src = np.load(tmp_path, mmap_mode="r")
    final[:] = src[: len(kept)]
    final.flush()
    del final, src
    return final_tmp, kept, skipped


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
        written, kept, skipped = _write_images(records, tmp_path, final_tmp, size, on_corrupt)
        index_path.unlink(missing_ok=True)  # killed from here on: no index, rebuilt next time
        os.replace(written, array_path)
        _write_json_atomic(index_path, _index(split, size, kept, skipped, fingerprint))
    finally:
        tmp_path.unlink(missing_ok=True)
        final_tmp.unlink(missing_ok=True)
    if skipped:
        logger.warning(
            "%s: skipped %d corrupt or missing image(s) of %d: %s",
            split,
            len(skipped),
            len(records),
            ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""),
        )
    seconds = time.perf_counter() - start
    logger.info(
        "%s: %d images prepared at %d² in %.1f s (%.0f images/s)",
        split,
        len(records),
        size,
        seconds,
        len(records) / max(seconds, 1e-9),
    )
    return index_path

"""COCO / Karpathy caption annotations: the one reader of privcam's data sets (training,
evaluation and the attacks' image sets).

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
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KARPATHY_FILE",
    "SPLITS",
    "CaptionDataError",
    "ImageRecord",
    "load_records",
    "read_coco_captions",
    "read_json",
    "read_karpathy_split",
]

logger = logging.getLogger("captioning.data")  # one logger for the data pipeline

SPLITS = ("train", "val", "test")
KARPATHY_FILE = "dataset_coco.json"


class CaptionDataError(ValueError):
    """A caption/annotation file is missing fields or malformed (message names the file)."""


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
        _require(
            entry, ["filename", "split", "sentences"], json_path, f"images[{i}]", _KARPATHY_EXPECTED
        )
        found[str(entry["split"])] = found.get(str(entry["split"]), 0) + 1
        split = "train" if entry["split"] == "restval" else str(entry["split"])
        if wanted is not None and split not in wanted:
            continue
        sentences = entry["sentences"]
        if not isinstance(sentences, list) or not sentences:
            raise CaptionDataError(
                f"{json_path}: images[{i}] ({entry['filename']}) has no "
                f"sentences; expected {_KARPATHY_EXPECTED}"
            )
        captions = []
        for j, sent in enumerate(sentences):
            if isinstance(sent, dict) and "raw" in sent:
                captions.append(str(sent["raw"]))
            elif isinstance(sent, dict) and "tokens" in sent:
                captions.append(" ".join(sent["tokens"]))
            else:
                raise CaptionDataError(
                    f"{json_path}: images[{i}].sentences[{j}] lacks 'raw'; "
                    f"expected {_KARPATHY_EXPECTED}"
                )
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
            json_path,
            sum(unknown.values()),
            unknown,
        )
    if wanted is not None and not records:
        raise CaptionDataError(
            f"{json_path}: no images in split(s) {sorted(wanted)}; split names found: "
            f"{dict(sorted(found.items())) or 'none'} (valid: train, restval, val, test)"
        )
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
        raise CaptionDataError(
            f"{json_path}: top level is not an object; expected {_COCO_EXPECTED}"
        )
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise CaptionDataError(f"{json_path}: no '{key}' list; expected {_COCO_EXPECTED}")
    for i, img in enumerate(data["images"]):
        _require(img, ["id", "file_name"], json_path, f"images[{i}]", _COCO_EXPECTED)
    ids = {img["id"] for img in data["images"]}
    for i, ann in enumerate(data["annotations"]):
        _require(ann, ["image_id", "caption"], json_path, f"annotations[{i}]", _COCO_EXPECTED)
        if ann["image_id"] not in ids:
            raise CaptionDataError(
                f"{json_path}: annotations[{i}] refers to image_id "
                f"{ann['image_id']} which is not in 'images'"
            )
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
        records.append(
            ImageRecord(int(image_id), image_dir / img["file_name"], split, captions, extra)
        )
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
        raise FileNotFoundError(
            f"data root {root} is not a folder (expected {KARPATHY_FILE} "
            "and/or annotations/captions_{train,val}2014.json inside)"
        )
    karpathy = root / KARPATHY_FILE
    if fmt not in ("auto", "karpathy", "coco"):
        raise ValueError(f"fmt must be 'auto', 'karpathy' or 'coco', got {fmt!r}")
    if fmt == "karpathy" or (fmt == "auto" and karpathy.exists()):
        records = read_karpathy_split(karpathy, root, splits=[split])
    else:
        if split == "test":
            raise FileNotFoundError(
                f"{karpathy}: not found; the test split needs the Karpathy "
                "split file (COCO caption files only give train and val)"
            )
        ann = root / "annotations" / f"captions_{split}2014.json"
        if not ann.exists() and fmt == "auto":
            raise FileNotFoundError(
                f"{root}: neither {KARPATHY_FILE} nor {ann} exists; expected "
                "a Karpathy split file or COCO caption files"
            )
        image_dir = root / f"{split}2014"
        if not image_dir.is_dir():
            image_dir = root / "images"
        records = read_coco_captions(ann, image_dir, split)
    if not records:
        raise CaptionDataError(f"{root}: split {split!r} is empty")
    return records

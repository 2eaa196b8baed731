"""The embedded data set: determinism, formats, captions, face annotations."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from captioning.synthetic import COLOURS, SHAPES, write_dataset
from captioning.vocab import tokenize


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_deterministic_from_seed(tmp_path: Path) -> None:
    a = write_dataset(tmp_path / "a", seed=3, train=5, val=2, test=2, size=32)
    b = write_dataset(tmp_path / "b", seed=3, train=5, val=2, test=2, size=32)
    c = write_dataset(tmp_path / "c", seed=4, train=5, val=2, test=2, size=32)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    # image i of a split does not depend on how many images are generated
    d = write_dataset(tmp_path / "d", seed=3, train=7, val=2, test=2, size=32)
    assert (a / "images/train_000004.png").read_bytes() == (
        d / "images/train_000004.png"
    ).read_bytes()


def test_formats_and_captions(synthetic_root: Path) -> None:
    karpathy = json.loads((synthetic_root / "dataset_coco.json").read_text())
    splits = [e["split"] for e in karpathy["images"]]
    assert splits.count("train") == 27 and splits.count("restval") == 3
    assert splits.count("val") == 6 and splits.count("test") == 6
    train = json.loads((synthetic_root / "annotations/captions_train2014.json").read_text())
    val = json.loads((synthetic_root / "annotations/captions_val2014.json").read_text())
    assert len(train["images"]) == 27 and len(val["images"]) == 15  # restval + val + test
    assert len(train["annotations"]) == 5 * 27
    vocabulary = set()
    for entry in karpathy["images"]:
        raws = [s["raw"] for s in entry["sentences"]]
        assert len(raws) == 5 and len(set(raws)) == 5, raws  # differently worded
        for raw in raws:
            assert 3 <= len(tokenize(raw)) <= 16
            vocabulary.update(tokenize(raw))
        img = np.asarray(Image.open(synthetic_root / entry["filepath"] / entry["filename"]))
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert set(COLOURS) <= vocabulary and set(SHAPES) <= vocabulary
    assert {"face", "left", "above", "below", "striped", "checkered"} <= vocabulary


def test_faces_are_annotated(synthetic_root: Path) -> None:
    karpathy = json.loads((synthetic_root / "dataset_coco.json").read_text())
    with_face = [e for e in karpathy["images"] if e["has_face"]]
    assert 0 < len(with_face) < len(karpathy["images"])
    for entry in karpathy["images"]:
        mentions = any("face" in s["raw"] for s in entry["sentences"])
        assert mentions == entry["has_face"] == bool(entry["faces"])
        for face in entry["faces"]:
            x, y, w, h = face["bbox"]
            assert 0 <= x and 0 <= y and x + w <= 32 and y + h <= 32 and w == h > 0
    coco = json.loads((synthetic_root / "annotations/captions_train2014.json").read_text())
    assert all("faces" in img and "has_face" in img for img in coco["images"])

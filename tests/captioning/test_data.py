"""Loading COCO / Karpathy files, preparation, Dataset + collation, and bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from captioning.data import (
    CaptionDataError,
    CaptionDataset,
    CorruptImageError,
    collate_captions,
    load_image,
    load_records,
    main,
    prepare_split,
    read_coco_captions,
    read_karpathy_split,
)
from captioning.vocab import Vocabulary


def test_karpathy_and_coco_formats_agree(synthetic_root: Path) -> None:
    karpathy = {s: load_records(synthetic_root, s) for s in ("train", "val", "test")}
    assert [len(karpathy[s]) for s in ("train", "val", "test")] == [30, 6, 6]
    assert all(r.split == "train" for r in karpathy["train"])  # restval merged
    coco_train = read_coco_captions(
        synthetic_root / "annotations/captions_train2014.json", synthetic_root / "images"
    )
    coco_val = read_coco_captions(
        synthetic_root / "annotations/captions_val2014.json", synthetic_root / "images", split="val"
    )
    by_id = {r.image_id: r for r in coco_train + coco_val}
    assert len(by_id) == 42
    for split_records in karpathy.values():
        for rec in split_records:
            other = by_id[rec.image_id]
            assert other.path == rec.path and other.path.is_file()
            assert other.captions == rec.captions and len(rec.captions) == 5
            assert other.info()["faces"] == rec.info()["faces"]
    # a root with only the COCO files: train/val from the caption files, no test split
    coco_only = synthetic_root.parent / "coco_only"
    shutil.copytree(synthetic_root / "annotations", coco_only / "annotations")
    shutil.copytree(synthetic_root / "images", coco_only / "images")
    assert len(load_records(coco_only, "train")) == 27
    assert len(load_records(coco_only, "val")) == 15
    with pytest.raises(FileNotFoundError, match=r"dataset_coco\.json"):
        load_records(coco_only, "test")


def test_prepare_and_dataset(synthetic_root: Path, tmp_path: Path) -> None:
    records = load_records(synthetic_root, "val")
    vocab = Vocabulary.build([c for r in records for c in r.captions], min_count=1)
    index = prepare_split(records, tmp_path, "val", size=24)
    assert json.loads(index.read_text())["skipped"] == []
    prepared = CaptionDataset.from_prepared(tmp_path, "val", vocab, captions_per_image=None)
    raw = CaptionDataset(records, vocab, image_size=24, captions_per_image=None)
    assert len(prepared) == len(raw) == 6
    for i in range(len(raw)):
        (img_p, caps_p, id_p), (img_r, caps_r, id_r) = prepared[i], raw[i]
        assert img_p.dtype == torch.uint8 and img_p.shape == (3, 24, 24)
        assert torch.equal(img_p, img_r) and torch.equal(caps_p, caps_r) and id_p == id_r
        assert caps_p.shape[0] == 5 and (caps_p[:, 0] == vocab.bos_id).all()
    assert prepared.references == {r.image_id: list(r.captions) for r in records}


def test_prepare_cli(synthetic_root: Path, tmp_path: Path) -> None:
    assert (
        main(["prepare", "--root", str(synthetic_root), "--size", "16", "--out", str(tmp_path)])
        == 0
    )
    for split, n in (("train", 30), ("val", 6), ("test", 6)):
        arr = np.load(tmp_path / f"{split}_images.npy", mmap_mode="r")
        assert arr.shape == (n, 3, 16, 16) and arr.dtype == np.uint8


def test_caption_sampling_and_collation(synthetic_root: Path) -> None:
    records = load_records(synthetic_root, "val")
    # give the first image 7 captions, the second 3 (COCO has 5-7; user sets may have fewer)
    records[0] = type(records[0])(
        records[0].image_id,
        records[0].path,
        "val",
        (*records[0].captions, "a red circle", "a blue square"),
    )
    records[1] = type(records[1])(
        records[1].image_id, records[1].path, "val", records[1].captions[:3]
    )
    vocab = Vocabulary.build([c for r in records for c in r.captions], min_count=1)
    ds = CaptionDataset(records, vocab, image_size=32, captions_per_image=5, seed=0)
    seen = set()
    for _ in range(20):  # sampling 5 of 7 changes between reads
        seen.add(tuple(map(tuple, ds[0][1].tolist())))
    assert len(seen) > 1
    batch = collate_captions([ds[0], ds[1], ds[2]])
    assert batch.images.shape == (3, 3, 32, 32) and batch.images.dtype == torch.uint8
    assert batch.caption_to_image.tolist() == [0] * 5 + [1] * 3 + [2] * 5
    assert batch.captions.shape[0] == 13
    assert batch.image_ids.tolist() == [r.image_id for r in records[:3]]
    imgs = batch.float_images()
    assert imgs.dtype == torch.float32 and 0.0 <= imgs.min() and imgs.max() <= 1.0


def test_missing_files_are_named(tmp_path: Path, fresh_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_records(tmp_path / "nowhere", "train")
    with pytest.raises(FileNotFoundError, match=r"missing\.json.*Karpathy"):
        read_karpathy_split(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match=r"captions_x\.json.*COCO captions"):
        read_coco_captions(tmp_path / "captions_x.json", tmp_path)
    (fresh_root / "images" / "val_000001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"val_000001\.png"):
        load_image(fresh_root / "images" / "val_000001.png")


def test_malformed_json_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "dataset_coco.json"
    bad.write_text('{"images": [ {"filename": "a.png", ')
    with pytest.raises(CaptionDataError, match=r"dataset_coco\.json: malformed JSON"):
        load_records(tmp_path, "train")
    bad.write_text(json.dumps({"images": [{"filename": "a.png", "split": "train"}]}))
    with pytest.raises(CaptionDataError, match=r"images\[0\] lacks \['sentences'\]"):
        load_records(tmp_path, "train")
    bad.write_text(json.dumps({"pictures": []}))
    with pytest.raises(CaptionDataError, match="no 'images' list"):
        load_records(tmp_path, "train")
    coco = tmp_path / "captions.json"
    coco.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.png"}],
                "annotations": [{"image_id": 2, "caption": "x"}],
            }
        )
    )
    with pytest.raises(CaptionDataError, match=r"captions\.json: annotations\[0\].*image_id 2"):
        read_coco_captions(coco, tmp_path)
    coco.write_text(json.dumps({"images": [{"id": 1}], "annotations": []}))
    with pytest.raises(CaptionDataError, match=r"images\[0\] lacks \['file_name'\]"):
        read_coco_captions(coco, tmp_path)


def test_corrupt_image_skip_or_fail(fresh_root: Path, tmp_path: Path, caplog) -> None:
    target = fresh_root / "images" / "val_000002.png"
    target.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    records = load_records(fresh_root, "val")
    with pytest.raises(CorruptImageError, match=r"val_000002\.png"):
        load_image(target)
    with pytest.raises(CorruptImageError, match=r"val_000002\.png"):
        prepare_split(records, tmp_path / "fail", "val", 16, on_corrupt="fail")
    index = prepare_split(records, tmp_path / "skip", "val", 16, on_corrupt="skip")
    data = json.loads(index.read_text())
    assert data["skipped"] == ["val_000002.png"] and len(data["images"]) == 2
    assert np.load(tmp_path / "skip" / "val_images.npy").shape == (2, 3, 16, 16)
    assert "val_000002.png" in caplog.text
    vocab = Vocabulary.build([c for r in records for c in r.captions], min_count=1)
    raw = CaptionDataset(records, vocab, image_size=16, on_corrupt="skip")
    batch = collate_captions([raw[i] for i in range(3)])
    assert batch.images.shape[0] == 2 and raw.num_skipped == 1
    with pytest.raises(CorruptImageError, match=r"val_000002\.png"):
        CaptionDataset(records, vocab, image_size=16, on_corrupt="fail")[2]

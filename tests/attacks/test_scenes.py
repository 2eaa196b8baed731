"""Attack scenes: the embedded set, folders and data roots read like training, clear errors."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attacks.scenes import load_image_set, make_embedded_set


def test_embedded_set_matches_the_synthetic_writer(tmp_path):
    from captioning.synthetic import write_dataset

    root = write_dataset(tmp_path / "syn", seed=3, train=2, val=1, test=4, size=48)
    ours = make_embedded_set(4, 48, seed=3)
    loaded = load_image_set(root, image_size=48, split="test")  # COCO/Karpathy root
    assert np.array_equal(ours.images, loaded.images)
    assert ours.faces == loaded.faces
    assert len(ours.identities) == 4


def test_folder_of_images_and_resizing(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(
            tmp_path / f"img{i}.png"
        )
    (tmp_path / "notes.txt").write_text("not an image")
    images = load_image_set(tmp_path, image_size=32)
    assert images.images.shape == (3, 32, 32, 3) and images.faces is None


def test_bad_sources_name_the_path_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"no images in {tmp_path}.*embedded"):
        load_image_set(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_set(tmp_path / "missing")


def test_data_root_is_read_like_training(tmp_path):
    """One COCO/Karpathy reader: restval is part of train, only captions_* files count, and the
    pixels are training's (captioning.data.load_image at the same size)."""
    import json

    from captioning.data import load_image, load_records
    from captioning.synthetic import write_dataset

    root = write_dataset(tmp_path / "syn", seed=0, train=10, val=2, test=2, size=48)
    doc = json.loads((root / "dataset_coco.json").read_text())
    restval = [e["filename"] for e in doc["images"] if e["split"] == "restval"]
    assert restval  # the writer marks some train images restval
    train = load_image_set(root, image_size=32, split="train")
    assert {f"{Path(n).stem}" for n in restval} <= set(train.names)
    records = load_records(root, "train")
    assert len(train) == len(records)
    assert np.array_equal(train.images[0], load_image(records[0].path, 32))
    # COCO files only: instances_* (which list every image again) are not caption files
    coco = tmp_path / "coco"
    (coco / "annotations").mkdir(parents=True)
    (coco / "val2014").mkdir()
    images, anns = [], []
    for i, rec in enumerate(load_records(root, "val")):
        Image.open(rec.path).save(coco / "val2014" / rec.path.name)
        images.append({"id": i, "file_name": rec.path.name})
        anns.append({"id": i, "image_id": i, "caption": rec.captions[0]})
    (coco / "annotations" / "captions_val2014.json").write_text(
        json.dumps({"images": images, "annotations": anns})
    )
    (coco / "annotations" / "instances_val2014.json").write_text(
        json.dumps({"images": images, "annotations": []})
    )
    both = load_image_set(coco, image_size=32, split=None)
    assert len(both) == len(images)
    with pytest.raises(ValueError, match="--split 'restval'"):
        load_image_set(root, image_size=32, split="restval")

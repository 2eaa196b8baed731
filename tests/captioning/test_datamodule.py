"""The caption data module: options checked by name, loaders, the embedded set on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from captioning.datamodule import CaptionDataModule, available_cpus


def test_loaders_over_the_prepared_arrays(synthetic_root: Path, tmp_path: Path) -> None:
    dm = CaptionDataModule(root=str(synthetic_root), image_size=32, min_word_count=1,
                           prepared_dir=str(tmp_path / "prep"), batch_size=4, eval_batch_size=3,
                           num_workers=0, max_eval_images=5)  # fmt: skip
    batch = next(iter(dm.train_dataloader()))
    assert batch.images.shape == (4, 3, 32, 32) and dm.vocab_size == len(dm.vocab)
    assert len(dm.val_dataloader().dataset) == 5  # max_eval_images
    assert set(dm.references("test")) == set(dm.scenes("test"))  # embedded set: every scene
    assert (tmp_path / "prep" / "train_images.npy").is_file()
    assert 1 <= available_cpus()


@pytest.mark.parametrize(
    ("options", "names"),
    [({"max_eval_images": 0}, "data.max_eval_images"), ({"format": "xml"}, "data.format"),
     ({"image_size": 4}, "data.image_size"), ({"num_workers": -1}, "data.num_workers")],
)  # fmt: skip
def test_bad_options_are_named(synthetic_root: Path, options, names) -> None:
    with pytest.raises(ValueError, match=names):
        CaptionDataModule(root=str(synthetic_root), **options)


def test_embedded_data_set_is_generated_on_demand(tmp_path: Path) -> None:
    root = tmp_path / "embedded"
    CaptionDataModule(root=str(root), generate_embedded=True, embedded_train=4, embedded_val=2,
                      embedded_test=2, embedded_image_size=16, image_size=16,
                      min_word_count=1)  # fmt: skip
    assert (root / "dataset_coco.json").is_file()
    assert not list(tmp_path.glob("embedded.tmp*"))  # built aside, then renamed

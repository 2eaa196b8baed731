"""Per-image eval rows (a torchmetrics Metric with cat reduction) and the split's metrics."""

from __future__ import annotations

import pytest
import torch

from captioning.vocab import Vocabulary
from endtoend.eval_outputs import PerImageRows, image_quality, per_image_outputs, split_metrics


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary.build(["a red circle", "a blue square"], min_count=1)


def _tokens(vocab: Vocabulary, captions: list[str], width: int = 6) -> torch.Tensor:
    rows = []
    for c in captions:
        ids = [vocab.stoi[w] for w in c.split()] + [Vocabulary.eos_id]
        rows.append(ids + [Vocabulary.pad_id] * (width - len(ids)))
    return torch.tensor(rows)


def test_rows_concatenate_sort_and_drop_padded_duplicates(vocab) -> None:
    rows = PerImageRows()
    tokens = _tokens(vocab, ["a red circle", "a blue square"])
    rows.update(image_id=torch.tensor([7, 3]), tokens=tokens, ssim=torch.tensor([0.5, 0.25]),
                psnr=torch.tensor([20.0, 10.0]),
                wiener_ssim_per_k=torch.tensor([[0.1, 0.2], [0.3, 0.4]]),
                adversary_ssim=None)  # fmt: skip
    rows.update(image_id=torch.tensor([7]), tokens=_tokens(vocab, ["a red circle"]),
                ssim=torch.tensor([0.5]), psnr=torch.tensor([20.0]),
                wiener_ssim_per_k=torch.tensor([[0.1, 0.2]]))  # fmt: skip
    gathered = rows.compute()
    assert "adversary_ssim" not in gathered and gathered["image_id"].tolist() == [7, 3, 7]
    out = per_image_outputs(gathered, vocab)
    assert list(out) == [3, 7]  # by id, the sampler's repeat dropped
    assert out[3] == {"caption": "a blue square", "ssim": 0.25, "psnr": 10.0,
                      "wiener_ssim_per_k": pytest.approx([0.3, 0.4])}  # fmt: skip
    rows.reset()
    assert rows.update_count == 0 and per_image_outputs({}, vocab) == {}


def test_unknown_field_is_refused() -> None:
    with pytest.raises(KeyError, match="capton"):
        PerImageRows().update(capton=torch.zeros(1))


def test_split_metrics_from_rows() -> None:
    per_image = {
        1: {"caption": "a red circle", "ssim": 0.2, "psnr": 10.0, "wiener_ssim_per_k": [0.1, 0.5]},
        2: {"caption": "a blue square", "ssim": 0.4, "psnr": 20.0, "wiener_ssim_per_k": [0.3, 0.1]},
    }
    refs = {1: ["a red circle"], 2: ["a blue square"]}
    m = split_metrics(per_image, refs, {}, "val")
    assert m["val/ssim"] == pytest.approx(0.3) and m["val/ssim_std"] == pytest.approx(0.1)
    assert m["val/psnr"] == pytest.approx(15.0) and m["val/num_images"] == 2.0
    assert m["val/CIDEr"] == m["val/CIDEr-D"] > 0
    assert m["val/wiener_ssim"] == pytest.approx(0.3)  # best single K: mean (0.2, 0.3)
    assert m["val/wiener_oracle_ssim"] == pytest.approx(0.4)  # each image's own K
    assert "val/adversary_ssim" not in m and "val/grounding_f1" not in m
    assert "val/shape_f1" not in m  # no ground truth: no grounding


def test_split_metrics_log_shape_f1_with_ground_truth() -> None:
    """The embedded data set's scenes add grounding, shape F1 among it (``val/shape_f1``)."""
    per_image = {
        1: {"caption": "a red circle and a square", "ssim": 0.2, "psnr": 10.0},
        2: {"caption": "a star", "ssim": 0.4, "psnr": 20.0},
    }
    objects = {1: ["circle", "face"], 2: ["star", "ring"]}
    scenes = {i: {"background": "dots", "relation": None,
                  "objects": [{"kind": k, "colour": "red", "size": "small"} for k in kinds]}
              for i, kinds in objects.items()}  # fmt: skip
    refs = {1: ["a red circle"], 2: ["a star"]}
    m = split_metrics(per_image, refs, scenes, "val")
    # shapes: 2 of 3 named are there, 2 of 4 present are named
    assert m["val/shape_f1"] == pytest.approx(4 / 7) and "val/grounding_f1" in m


def test_image_quality_of_identical_images() -> None:
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    ssim, psnr = image_quality(x, x)
    assert torch.allclose(ssim, torch.ones(2), atol=1e-5) and bool((psnr > 100).all())

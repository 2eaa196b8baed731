"""Pre-training of the in-loop attacker before min–max (InLoopAdversary.pretrain)."""

import pytest
import torch

from attacks.adversary import InLoopAdversary, pretrain_plateaued
from attacks.metrics import ssim


@pytest.mark.parametrize(
    ("scores", "patience", "expected"),
    [
        ([], 2, False),
        ([0.3, 0.4, 0.5, 0.6], 2, False),  # keeps gaining: never stops
        ([0.3, 0.5, 0.5, 0.5], 2, True),  # two epochs without a gain
        ([0.3, 0.5, 0.501, 0.5015], 2, True),  # gains below min_delta count as none
        ([0.3, 0.5, 0.49, 0.52], 2, False),  # a late gain resets the count
        ([0.3, 0.5, 0.5], 3, False),
    ],
)
def test_plateau_rule(scores, patience, expected):
    assert pretrain_plateaued(scores, patience, 2e-3) is expected


def _blur_pairs(n_batches: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """(captures, originals, None) batches: 16² scenes blurred by a 3×3 box."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        x = torch.rand(4, 3, 16, 16, generator=g)
        blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        batches.append((blurred, x, None))
    return batches


def test_pretrain_raises_ssim_stops_at_its_cap_and_resumes():
    pairs = _blur_pairs(3)
    adv = InLoopAdversary("unet", lr=3e-3, base_channels=4, depth=1)
    rows = []
    history = adv.pretrain(lambda: iter(pairs), 3, patience=50, after_epoch=rows.append)
    assert [r["epoch"] for r in history] == [0, 1, 2] and rows == history
    assert adv.updates == 9 and adv.pretrain_done
    assert all(r["images"] == 12 for r in history)
    assert history[-1]["ssim"] > history[0]["ssim"] + 0.01, history  # it learns
    # the trained net scores above its first epoch (scored before each of its updates)
    with torch.no_grad():
        trained = float(ssim(adv.net(pairs[0][0]).clamp(0, 1), pairs[0][1]).mean())
    assert trained > history[0]["ssim"]

    # an interrupted pre-training continues from its history (the state of a saved epoch)
    state = adv.state_dict()
    state["pretrain"]["done"] = False
    resumed = InLoopAdversary("unet", lr=3e-3, base_channels=4, depth=1)
    resumed.load_state_dict(state)
    more = resumed.pretrain(lambda: iter(pairs), 5, patience=50)
    assert [r["epoch"] for r in more] == [0, 1, 2, 3, 4]
    assert more[:3] == history and resumed.updates == 15


def test_pretrain_stops_on_a_plateau():
    # lr 0: every epoch scores the same, so the plateau (patience 2) ends it after 3 epochs
    pairs = _blur_pairs(2)
    adv = InLoopAdversary("unet", lr=1e-12, base_channels=4, depth=1)
    history = adv.pretrain(lambda: iter(pairs), 20, patience=2)
    assert len(history) == 3


def test_pretrain_refuses_an_empty_loader():
    adv = InLoopAdversary("unet", base_channels=4, depth=1)
    with pytest.raises(ValueError, match=r"adversary_pretrain_epochs.*no batch"):
        adv.pretrain(lambda: iter([]), 2)

"""The trainer's LR schedule equals the closed form it replaces: (step + 1) / warm-up, then a
cosine to 0 (or constant 1)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from captioning.optim import warmup_then_decay


def _closed_form(step: int, warmup: int, total: int, decay: str) -> float:
    if step < warmup:
        return (step + 1) / warmup
    if decay == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize(
    ("warmup", "total", "decay"),
    [(0, 50, "cosine"), (5, 50, "cosine"), (1, 20, "cosine"), (7, 30, "constant"),
     (0, 10, "constant")],
)  # fmt: skip
def test_schedule_matches_the_closed_form(warmup, total, decay) -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param, torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    optimizer.param_groups[0]["lr"] = 0.1  # two groups with their own rates, as in training
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation or ordering warnings from torch
        scheduler = warmup_then_decay(optimizer, total, warmup, decay)
        for step in range(total):
            want = 0.1 * _closed_form(step, warmup, total, decay)
            assert optimizer.param_groups[0]["lr"] == pytest.approx(want, abs=1e-12)
            optimizer.step()
            scheduler.step()


def test_unknown_decay_is_refused() -> None:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="decay"):
        warmup_then_decay(optimizer, 10, 0, "step")

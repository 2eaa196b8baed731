"""Learning-rate schedule of the end-to-end trainer, from ``torch.optim.lr_scheduler`` parts."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    SequentialLR,
)

__all__ = ["DECAYS", "warmup_then_decay"]

DECAYS = ("cosine", "constant")


def warmup_then_decay(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, decay: str = "cosine"
) -> LRScheduler:
    """Per-step LR factor: linear warm-up ``(step + 1) / warmup_steps`` for the first
    ``warmup_steps`` steps, then ``decay``: "cosine" from 1 to 0 at ``total_steps``, or
    "constant" 1. Stepped once per optimiser step."""
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
    if decay == "cosine":
        after: LRScheduler = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps))
    else:
        after = ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup_steps <= 0:
        return after
    # factor 1/w at step 0 rising linearly to 1 at step w - 1 = (step + 1) / w
    warmup = LinearLR(optimizer, 1.0 / warmup_steps, 1.0, total_iters=max(1, warmup_steps - 1))
    return SequentialLR(optimizer, [warmup, after], milestones=[warmup_steps])

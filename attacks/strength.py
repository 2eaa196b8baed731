"""The attacker-strength curve: the attacker-train pair counts to try, and one learned attacker
retrained on nested subsets of attacker-train, each scored on attacker-test."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .metrics import mean_std, psnr, ssim
from .registry import AttackRun

__all__ = ["parse_strength_curve", "run_strength_curve", "strength_point"]


def parse_strength_curve(spec: str | Sequence[int | str] | None) -> list[int | str]:
    """ "100,300,all" (or a list) → [100, 300, "all"]: attacker-train pair counts, increasing."""
    if spec is None or spec == "" or spec == []:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[int | str] = []
    for item in items:
        text = str(item).strip().lower()
        if text == "all":
            out.append("all")
            continue
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 2:
            raise ValueError(
                f"strength curve point {item!r} is not a pair count >= 2 or 'all' "
                "(e.g. --strength-curve 100,300,1000,all)"
            )
        out.append(value)
    return out


def run_strength_curve(
    run: AttackRun, curve: list[int | str], kind: str, folder: Path
) -> list[dict[str, Any]]:
    """Retrain ``kind`` on nested subsets of attacker-train; one row per pair count."""
    from .training import reconstruct

    n_train, learned, recons = len(run.pairs.train), run.learned, run.recons
    counts = sorted({n_train if c == "all" else min(int(c), n_train) for c in curve})
    order = np.random.default_rng(run.seed + 1).permutation(n_train)
    points = []
    for n in counts:
        if n == n_train and kind in learned:  # the main run is this point: same data and seed
            info, rec = learned[kind], recons[kind]
        else:
            model, info = run.fit(kind, np.sort(order[:n]), folder / f"{kind}_{n}")
            rec = reconstruct(model.generator, run.cap_test, run.batch_size, run.device)
        points.append(strength_point(kind, n, info, rec, run.ori_test))
    return points


def strength_point(
    kind: str, n: int, info: dict[str, Any], rec: torch.Tensor, originals: torch.Tensor
) -> dict[str, Any]:
    """One point of a strength curve: attacker ``kind`` trained on ``n`` pairs (``info``: from
    ``train_attacker``), its reconstructions ``rec`` (N, 3, H, W) scored against ``originals``."""
    ori = originals.cpu()
    keys = ("train_pairs", "val_pairs", "epochs", "best_epoch", "val_history",
            "val_identity_ssim", "val_best_ssim", "converged", "seconds", "steps",
            "content_loss", "backbone")  # fmt: skip
    return {
        "attacker": kind,
        "pairs": n,
        **{k: info.get(k) for k in keys},
        "ssim": mean_std(ssim(rec.float(), ori)),
        "psnr": mean_std(psnr(rec.float(), ori)),
    }

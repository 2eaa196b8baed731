"""Validation / test outputs of the end-to-end model: per-image rows gathered across ranks, and
the split's metrics computed from them.

Each eval step adds one row per image (id, caption tokens, SSIM/PSNR of the capture, the
Wiener attacker's SSIM per K, the in-loop attacker's SSIM) to :class:`PerImageRows`, a
``torchmetrics.Metric`` whose list states are concatenated across DDP ranks on ``compute``.
:func:`split_metrics` turns the deduplicated rows into the logged numbers; it is identical on
every rank (computed from the gathered rows), so logging it needs no reduction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from attacks.metrics import psnr as attack_psnr
from attacks.metrics import ssim as attack_ssim
from captioning.grounding import grounding_scores
from captioning.metrics import fast_scores, score_captions
from captioning.vocab import Vocabulary

__all__ = ["PerImageRows", "fixed_width", "image_quality", "per_image_outputs", "split_metrics"]

ROW_FIELDS = ("image_id", "tokens", "ssim", "psnr", "wiener_ssim_per_k", "adversary_ssim")


class PerImageRows(Metric):
    """Per-image eval rows of every rank (``dist_reduce_fx="cat"``).

    ``update`` takes ``image_id`` (B,), ``tokens`` (B, W) caption ids padded to a fixed width,
    ``ssim`` / ``psnr`` (B,), and optionally ``wiener_ssim_per_k`` (B, N_k) and
    ``adversary_ssim`` (B,); ``compute`` returns the fields that were given, concatenated over
    batches and ranks (duplicates of DistributedSampler's padding included).
    """

    full_state_update = False
    higher_is_better = None

    def __init__(self) -> None:
        super().__init__(compute_with_cache=False)
        for name in ROW_FIELDS:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, **rows: torch.Tensor | None) -> None:
        for name, value in rows.items():
            if name not in ROW_FIELDS:
                raise KeyError(f"unknown per-image field {name!r}; known: {ROW_FIELDS}")
            if value is not None:
                getattr(self, name).append(value.detach().to(self.device))

    def compute(self) -> dict[str, torch.Tensor]:
        return {
            name: dim_zero_cat(getattr(self, name)).cpu()
            for name in ROW_FIELDS
            if isinstance(getattr(self, name), torch.Tensor) or getattr(self, name)
        }


def per_image_outputs(
    rows: Mapping[str, torch.Tensor], vocab: Vocabulary
) -> dict[int, dict[str, Any]]:
    """Gathered rows → image id → {"caption", "ssim", "psnr"[, "wiener_ssim_per_k",
    "adversary_ssim"]}, sorted by id; a repeated id (sampler padding) keeps its last row."""
    if "image_id" not in rows or rows["image_id"].numel() == 0:
        return {}
    order = torch.argsort(rows["image_id"], stable=True)
    captions = vocab.decode_batch(rows["tokens"][order])
    out: dict[int, dict[str, Any]] = {}
    for j, i in enumerate(order.tolist()):
        row: dict[str, Any] = {"caption": captions[j]}
        for name in ("ssim", "psnr", "adversary_ssim"):
            if name in rows and rows[name].numel():
                row[name] = float(rows[name][i])
        if "wiener_ssim_per_k" in rows and rows["wiener_ssim_per_k"].numel():
            row["wiener_ssim_per_k"] = rows["wiener_ssim_per_k"][i].tolist()
        out[int(rows["image_id"][i])] = row
    return out


def split_metrics(
    per_image: Mapping[int, Mapping[str, Any]],
    references: Mapping[int, Sequence[str]],
    scenes: Mapping[int, Mapping[str, Any]],
    stage: str,
) -> dict[str, float]:
    """``{stage}/<name>`` metrics of a split from its per-image outputs.

    Caption metrics ×100 (val: the fast BLEU-4 / CIDEr-D; test: all), ``CIDEr`` = CIDEr-D (the
    checkpoint monitor), grounding fractions when ``scenes`` (embedded data set) are given,
    SSIM / PSNR of the captures (mean, std), the Wiener attacker's SSIM at the split's one best
    K and at each image's own K (oracle), and the in-loop attacker's mean SSIM.
    """
    candidates = {i: o["caption"] for i, o in per_image.items()}
    if stage == "val":
        scores = fast_scores(references, candidates)
    else:
        scores = {k: v for k, v in score_captions(references, candidates).items() if v is not None}
    metrics = {f"{stage}/{k}": 100.0 * v for k, v in scores.items()}
    metrics[f"{stage}/CIDEr"] = metrics.get(f"{stage}/CIDEr-D", 0.0)
    if scenes:  # embedded data set: does the caption name what is in the image?
        grounding = grounding_scores(scenes, candidates)
        metrics.update({f"{stage}/{k}": v for k, v in grounding.items() if v is not None})
    ssim = torch.tensor([o["ssim"] for o in per_image.values()], dtype=torch.float64)
    psnr = torch.tensor([o["psnr"] for o in per_image.values()], dtype=torch.float64)
    metrics.update(
        {
            f"{stage}/ssim": float(ssim.mean()),
            f"{stage}/ssim_std": float(ssim.std(unbiased=False)),
            f"{stage}/psnr": float(psnr.mean()),
            f"{stage}/psnr_std": float(psnr.std(unbiased=False)),
            f"{stage}/num_images": float(len(per_image)),
        }
    )
    per_k = [o["wiener_ssim_per_k"] for o in per_image.values() if "wiener_ssim_per_k" in o]
    if per_k:  # the attacker's one best K on the split, and each image's own (oracle)
        per_k_t = torch.tensor(per_k, dtype=torch.float64)
        metrics[f"{stage}/wiener_ssim"] = float(per_k_t.mean(0).max())
        metrics[f"{stage}/wiener_oracle_ssim"] = float(per_k_t.max(1).values.mean())
    adversary = [o["adversary_ssim"] for o in per_image.values() if "adversary_ssim" in o]
    if adversary:  # the in-loop attacker (model.adversary) on the same captures
        metrics[f"{stage}/adversary_ssim"] = sum(adversary) / len(adversary)
    return metrics


def image_quality(
    captured: torch.Tensor, original: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image SSIM (Gaussian 11, σ 1.5, data range 1, RGB mean; ``attacks.metrics.ssim``,
    equal to scikit-image's) and PSNR (dB) → (B,), (B,)."""
    c, o = captured.float().clamp(0, 1), original.float()
    # identical images: 120 dB (MSE floor 1e-12) instead of inf, so epoch means stay finite
    return attack_ssim(c, o), attack_psnr(c, o).clamp(max=120.0)


def fixed_width(tokens: torch.Tensor, width: int, pad_id: int) -> torch.Tensor:
    """(B, L) token ids → (B, width): padded with ``pad_id`` or cut (batches of different
    caption lengths then concatenate across steps and ranks)."""
    if tokens.shape[1] >= width:
        return tokens[:, :width]
    return F.pad(tokens, (0, width - tokens.shape[1]), value=pad_id)

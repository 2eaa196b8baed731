"""The in-loop attacker pre-trained on the frozen starting lens (adversary_pretrain_epochs).

Min–max lens training otherwise starts against an untrained attacker that gains one update per
lens step, and the lens learns to beat that weak attacker rather than one trained to its plateau
(docs/results.md: the in-loop attacker's SSIM stayed far below a fresh one's). Before the first
lens step the attacker trains alone, epoch after epoch over the training loader's captures of the
starting lens (no lens or captioner update), until its held-out SSIM plateaus
(``attacks.adversary.InLoopAdversary.pretrain``).

An interrupted pre-training resumes: after each epoch the attacker is saved to
``<checkpoints>/adversary_pretrain.pt`` with the settings and starting lens it belongs to, and
a rerun in the same folder continues from it when they match (else starts afresh and says why).
Once pre-training is over the attacker's state (and its history) travels in every training
checkpoint, so a resumed lens run never pre-trains again.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from attacks.adversary import PRETRAIN_MIN_DELTA, pretrain_plateaued
from optics.lenses import has_surface

if TYPE_CHECKING:
    from endtoend.privacy_captioner import PrivacyCaptioner

__all__ = ["PRETRAIN_FILE", "pretrain_adversary", "pretrain_key"]

log = logging.getLogger("privcam.adversary")

PRETRAIN_FILE = "adversary_pretrain.pt"


def pretrain_key(module: PrivacyCaptioner) -> dict[str, Any]:
    """What a saved pre-training belongs to: the attacker's settings and the starting lens
    (its Zernike coefficients in µm, or the preset for a camera without a surface)."""
    hp = module.hparams
    lens = module.camera.lens
    coefficients = (
        [round(float(c), 9) for c in lens.coefficients_um().detach().cpu().flatten()]
        if has_surface(lens)
        else None
    )
    return {
        "adversary": hp.adversary,
        "channels": int(hp.adversary_channels),
        "depth": int(hp.adversary_depth),
        "lr": float(hp.adversary_lr),
        "preset": (hp.get("camera") or {}).get("preset"),
        # one starting captioner however its path is spelled (relative or absolute)
        "init_from": os.path.abspath(hp["init_from"]) if hp.get("init_from") else None,
        "lens_um": coefficients,
    }


def _pretrain_path(module: PrivacyCaptioner) -> Path:
    callback = module.trainer.checkpoint_callback
    folder = getattr(callback, "dirpath", None) or module.trainer.default_root_dir
    return Path(folder) / PRETRAIN_FILE


def _captures(module: PrivacyCaptioner, epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """Pre-training epoch ``epoch``'s (captures, originals, psf) of the current, frozen lens:
    the trainer's epoch (``trainer.limit_train_batches`` applies), reshuffled per epoch under
    DDP too (a DistributedSampler's order is fixed by its epoch, which Lightning sets only
    for its own epochs)."""
    trainer = module.trainer
    limit = trainer.num_training_batches
    batches = trainer.train_dataloader
    sampler = getattr(batches, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    if math.isfinite(limit):
        batches = itertools.islice(batches, int(limit))
    for batch in batches:
        batch = batch.to(module.device)
        with torch.no_grad():
            images = batch.float_images()
            captured, psf = module.capture(images)
        yield captured, images, psf


def pretrain_adversary(module: PrivacyCaptioner) -> list[dict[str, float]] | None:
    """Pre-train ``module``'s in-loop attacker (at the start of fit; a no-op when it is off,
    already done, or restored from a training checkpoint). Returns the history, or None."""
    adversary = module._adversary
    hp = module.hparams
    max_epochs = int(hp.get("adversary_pretrain_epochs", 0))
    if adversary is None or max_epochs == 0 or adversary.pretrain_done:
        return None
    if module.global_step > 0:  # resumed after min–max began (a checkpoint from before this option)
        return None
    trainer = module.trainer
    path, key = _pretrain_path(module), pretrain_key(module)
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if saved.get("key") == key:
            adversary.load_state_dict(saved["adversary"])
            log.info(
                "in-loop attacker: resuming its pre-training from %s (%d epochs done)",
                path,
                len(adversary.pretrain_history),
            )
        else:
            changed = sorted(k for k in key if saved.get("key", {}).get(k) != key[k])
            log.info(
                "in-loop attacker: %s belongs to another run (differs in %s); pre-training afresh",
                path,
                ", ".join(changed),
            )

    def after_epoch(row: dict[str, float]) -> None:
        if trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save({"key": key, "adversary": adversary.state_dict()}, tmp)
            tmp.replace(path)  # never a half-written file to resume from
            log.info(
                "in-loop attacker pre-training: epoch %d/%d, held-out SSIM %.4f, loss %.4f, %.0f s",
                row["epoch"] + 1,
                max_epochs,
                row["ssim"],
                row["loss"],
                row["seconds"],
            )
        if trainer.logger is not None:
            trainer.logger.log_metrics(
                {"adversary_pretrain/ssim": row["ssim"], "adversary_pretrain/loss": row["loss"]},
                step=int(row["epoch"]),
            )

    patience = int(hp.get("adversary_pretrain_patience", 2))
    history = adversary.pretrain(
        lambda: _captures(module, len(adversary.pretrain_history)),
        max_epochs,
        patience,
        PRETRAIN_MIN_DELTA,
        after_epoch,
    )
    if trainer.is_global_zero and history:
        scores = [row["ssim"] for row in history]
        plateau = pretrain_plateaued(scores, patience, PRETRAIN_MIN_DELTA)
        log.info(
            "in-loop attacker pre-trained: %d epochs (%s), held-out SSIM %.4f; min–max starts",
            len(history),
            "plateau" if plateau else "epoch cap",
            scores[-1],
        )
    return history

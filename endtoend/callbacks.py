"""Trainer callbacks of the end-to-end run: safeguards, progress, vocabulary, DDP check, figures.

``PrivacyCaptioner.configure_callbacks`` attaches the model's own ones (vocabulary writer,
DDP lens-consistency check, TensorBoard figures) to any Trainer; ``train.py``'s CLI adds the
non-finite-loss stop and, without a progress bar, one line per epoch.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from optics.cli_errors import WorkFailed
from optics.lenses import has_surface
from optics.plots import lens_images

__all__ = [
    "EpochProgress",
    "EvalFigures",
    "FrozenStagesNote",
    "LensConsistencyCheck",
    "NonFiniteLossStop",
    "VocabularyWriter",
    "non_finite_terms",
]

log = logging.getLogger("privcam.train")


class NonFiniteLossStop(L.Callback):
    """Stop training at the first non-finite loss, before its backward pass (so no NaN reaches
    the weights or a checkpoint), with a message naming the step and the non-finite terms."""

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        if bool(torch.isfinite(loss.detach()).all()):
            return
        terms = non_finite_terms(trainer)
        raise WorkFailed(
            f"training loss is {loss.detach().float().cpu().flatten()[0].item()} at global step "
            f"{trainer.global_step} (epoch {trainer.current_epoch}); non-finite terms: "
            f"{', '.join(terms) if terms else 'unknown'}. Stopped before the update, no "
            "checkpoint of this step was written. Check the config for NaN/inf values and the "
            "data for broken images, or lower the learning rates (model.lr_camera, "
            "model.lr_decoder) / set --trainer.gradient_clip_val"
        )


def non_finite_terms(trainer: L.Trainer) -> list[str]:
    """Names of the values logged in this training step that are NaN or infinite."""
    results = getattr(trainer, "_results", None)  # Lightning's per-step result collection
    bad = []
    for metric in (results or {}).values():
        value = getattr(metric, "_forward_cache", None)
        name = getattr(getattr(metric, "meta", None), "name", None)
        if isinstance(value, torch.Tensor) and name and not bool(torch.isfinite(value).all()):
            bad.append(f"{name}={value.float().cpu().flatten()[0].item()}")
    return bad


class EpochProgress(L.Callback):
    """One log line per finished epoch (used when the progress bar is off, e.g. in `make
    demo` or a batch job): epoch, train loss, the headline validation metrics, time, ETA."""

    KEYS = (
        "val/grounding_f1",
        "val/shape_f1",
        "val/CIDEr-D",
        "val/wiener_ssim",
        "val/adversary_ssim",
    )

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._start = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after the epoch's validation, so its metrics are this epoch's
        if not trainer.is_global_zero:
            return
        done, total = trainer.current_epoch + 1, max(1, int(trainer.max_epochs or 1))
        elapsed = time.perf_counter() - self._start
        metrics = trainer.callback_metrics
        parts = [f"{k.split('/', 1)[1]} {float(metrics[k]):.3g}" for k in self.KEYS if k in metrics]
        if "train/loss" in metrics:
            parts.insert(0, f"loss {float(metrics['train/loss']):.3g}")
        hp = pl_module.hparams
        name = self.name or ("blind" if hp.get("blind") else hp.get("camera", {}).get("preset"))
        log.info(
            "[%s] epoch %d/%d: %s · %.0f s, ETA %.0f s",
            name, done, total, ", ".join(parts), elapsed, elapsed / done * (total - done),
        )  # fmt: skip


class VocabularyWriter(L.Callback):
    """``<log_dir>/vocab.json`` at the start of fit (rank 0), beside the TensorBoard events."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        vocab = getattr(pl_module, "vocab", None)
        if vocab is not None and trainer.is_global_zero and log_dir:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            vocab.save(Path(log_dir) / "vocab.json")


class LensConsistencyCheck(L.Callback):
    """Under DDP, check that every rank ends with the same lens (gradients are all-reduced, so
    any difference means a broken setup), and the same in-loop attacker; say so in the log."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        lens = pl_module.camera.lens
        if not has_surface(lens) or not (
            torch.distributed.is_available() and torch.distributed.is_initialized()
        ):
            return
        coeffs = lens.coefficients_um().detach()
        gathered = pl_module.all_gather(coeffs)  # (world, J)
        spread = float((gathered - gathered[0]).abs().max())
        if spread > 0:
            raise RuntimeError(f"lens coefficients differ across DDP ranks by {spread:g} µm")
        if trainer.is_global_zero:
            log.info("lens coefficients identical on %d ranks", gathered.shape[0])
        adversary = getattr(pl_module, "_adversary", None)
        if adversary is not None:  # its gradients are averaged by attacks.adversary
            spread = adversary.max_weight_spread()
            if spread > 0:
                raise RuntimeError(f"in-loop attacker weights differ across ranks by {spread:g}")
            if trainer.is_global_zero:
                log.info("in-loop attacker identical on %d ranks", gathered.shape[0])


class EvalFigures(L.Callback):
    """TensorBoard figures at the end of validation / test (rank 0): originals beside their
    captures, the captions, and for lens cameras the PSF per wavelength and the height map."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, pl_module, "test")

    @staticmethod
    def _log(trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger

        tb = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        examples = getattr(pl_module, "eval_examples", None)
        if not trainer.is_global_zero or tb is None or examples is None:
            return
        writer, step = tb.experiment, trainer.global_step
        pairs = torch.cat([examples["images"], examples["captured"]], dim=-1).clamp(0, 1)
        writer.add_images(f"{stage}/original_vs_captured", pairs, step)
        writer.add_text(
            f"{stage}/captions",
            "\n\n".join(f"{i}: {c}" for i, c in enumerate(examples["captions"])),
            step,
        )
        lens = pl_module.camera.lens
        if lens is not None:
            with torch.no_grad():
                psf = lens(height_noise=False).float().cpu()
                height = (
                    lens.height_map_um(include_base=False).float().cpu()
                    if has_surface(lens)
                    else None
                )
            for name, image in lens_images(psf, height, lens.wavelengths_nm).items():
                writer.add_image(f"{stage}/{name}", image, step)


class FrozenStagesNote(L.Callback):
    """Silence Lightning's "module(s) in eval mode at the start of training" warning when the
    eval-mode modules are exactly the encoder's frozen stages: they are kept in eval mode on
    purpose (``captioning.encoder``: frozen BatchNorm statistics), so the warning would only
    alarm every user. Any other eval-mode module keeps the warning."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        in_eval = [(name, m) for name, m in pl_module.named_modules() if not m.training]
        ours = all(
            name.startswith("captioner.encoder.")
            and not any(p.requires_grad for p in m.parameters())
            for name, m in in_eval
        )
        if in_eval and ours:  # the message with exactly this count, nothing broader
            warnings.filterwarnings(
                "ignore",
                message=rf"Found {len(in_eval)} module\(s\) in eval mode at the start of training",
                category=PossibleUserWarning,
            )

"""The end-to-end model's validation / test loop, as LightningModule hooks.

Each step captures the batch, captions it (``val_beam_size`` / ``test_beam_size``) and adds one
row per image to the model's ``eval_rows`` (``endtoend.eval_outputs.PerImageRows``): caption
tokens, SSIM / PSNR of the capture, the Wiener attacker's SSIM per K, the in-loop attacker's
SSIM. At epoch end the rows of every rank are gathered and the split's metrics logged.
"""

from __future__ import annotations

from typing import Any

import torch

from captioning.data import CaptionBatch
from captioning.vocab import Vocabulary
from endtoend.eval_outputs import fixed_width, image_quality, per_image_outputs, split_metrics
from optics.lenses import has_surface

__all__ = ["EvalLoop"]


class EvalLoop:
    """Validation and test hooks of :class:`~endtoend.privacy_captioner.PrivacyCaptioner`
    (a mixin before ``LightningModule``). The model provides ``capture``, ``cnn_input``,
    ``wiener_scores``, ``captioner``, ``camera``, ``vocab``, ``hparams``, ``_adversary`` and
    the eval state ``eval_rows``, ``eval_examples``, ``eval_split`` and ``last_eval``."""

    def _eval_step(self, batch: CaptionBatch, beam_size: int) -> None:
        images = batch.float_images()
        captured, psf = self.capture(images)
        out = self.captioner.generate(
            self.cnn_input(captured), beam_size=beam_size, max_len=self.hparams.max_decode_len
        )
        ssim, psnr = image_quality(captured, images)
        self.eval_rows.update(
            image_id=batch.image_ids,
            tokens=fixed_width(out.tokens, self.hparams.max_decode_len + 1, Vocabulary.pad_id),
            ssim=ssim,
            psnr=psnr,
            # per-K Wiener SSIM (B, N_k) for lens cameras: the attacker's best K is chosen on
            # the whole split at epoch end
            wiener_ssim_per_k=(
                self.wiener_per_image(captured, images, psf) if psf is not None else None
            ),
            adversary_ssim=(
                self._adversary.ssim_per_image(captured, images, psf)
                if self._adversary is not None
                else None
            ),
        )
        if self.eval_examples is None:
            k = self.hparams.log_images
            self.eval_examples = {
                "images": images[:k].cpu(),
                "captured": captured[:k].cpu(),
                "captions": out.captions[:k]
                if out.captions
                else self.vocab.decode_batch(out.tokens[:k]),
            }

    def wiener_per_image(
        self, captured: torch.Tensor, images: torch.Tensor, psf: torch.Tensor
    ) -> torch.Tensor:
        """(B, N_k) SSIM of the Wiener attacker's reconstruction for every K of attack_ks."""
        with torch.no_grad():
            return self.wiener_scores(captured, images, psf)[1].T.cpu()

    def validation_step(self, batch: CaptionBatch, batch_idx: int) -> None:
        self._eval_step(batch, self.hparams.val_beam_size)

    def test_step(self, batch: CaptionBatch, batch_idx: int) -> None:
        self._eval_step(batch, self.hparams.test_beam_size)

    def on_validation_epoch_start(self) -> None:
        self.eval_rows.reset()
        self.eval_examples = None

    on_test_epoch_start = on_validation_epoch_start

    def gather_outputs(self) -> dict[int, dict[str, Any]]:
        """All ranks' per-image outputs by image id (a collective under DDP: every rank calls
        it); DistributedSampler's padded duplicates are dropped."""
        if self.eval_rows.update_count == 0:
            return {}
        return per_image_outputs(self.eval_rows.compute(), self.vocab)

    def _eval_epoch_end(self, stage: str) -> dict[str, float]:
        per_image = self.gather_outputs()
        if not per_image:
            return {}
        split = self.eval_split or ("val" if stage == "val" else "test")
        data = self.trainer.datamodule
        metrics = split_metrics(per_image, data.references(split), data.scenes(split), stage)
        if has_surface(self.camera.lens):
            metrics[f"{stage}/max_phase_step_rad"] = self.camera.lens.check_phase_sampling()
        # identical on every rank (computed from gathered outputs): no reduction needed
        self.log_dict(metrics, sync_dist=False, rank_zero_only=False)
        self.last_eval = {
            "metrics": metrics,
            "captions": {i: o["caption"] for i, o in per_image.items()},
        }
        return metrics

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

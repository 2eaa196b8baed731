"""The end-to-end model: camera (optics) → ResNet encoder → top-down decoder, one LightningModule.

Loss: L = w_dec·(L_ce + λ·L_dsr) + w_p·L_p + w_H·L_H (published 0.4, λ = 1, 6, 30)
      [+ w_attack·L_W, the non-blind Wiener attacker's SSIM; + w_scene_labels·BCE;
      + w_adversary·SSIM of the in-loop attacker; all off by default].

The options stay flat (``--model.backbone``, ``--model.embed_dim`` …) because the published
configs and commands use those names; :data:`CAPTIONER_FIELDS` of them make the typed
:class:`~captioning.model.CaptionerConfig`. The validation / test hooks are
:class:`~endtoend.eval_loop.EvalLoop`'s.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from attacks.adversary import InLoopAdversary
from attacks.losses import wiener_leakage
from attacks.nonblind import Response
from captioning.data import CaptionBatch
from captioning.decoder import caption_loss, doubly_stochastic_loss
from captioning.grounding import SCENE_LABELS, scene_labels
from captioning.model import Captioner, CaptionerConfig
from captioning.optim import warmup_then_decay
from captioning.vocab import Vocabulary
from endtoend.adversary_pretrain import pretrain_adversary
from endtoend.callbacks import (
    EvalFigures,
    FrozenStagesNote,
    LensConsistencyCheck,
    VocabularyWriter,
)
from endtoend.checkpoints import load_captioner_weights
from endtoend.eval_loop import EvalLoop
from endtoend.eval_outputs import PerImageRows
from endtoend.options import (
    CAPTIONER_FIELDS,
    DEFAULT_ATTACK_KS,
    DEFAULT_OTF_BAND_CPP,
    check_camera_options,
    check_options,
)
from optics import Camera, CameraConfig, band_mtf_loss, distortion_loss, psf_mask_loss
from optics.lenses import has_surface

__all__ = ["CAPTIONER_FIELDS", "DEFAULT_ATTACK_KS", "PrivacyCaptioner", "check_options"]


class PrivacyCaptioner(EvalLoop, L.LightningModule):
    """Camera + captioner trained end to end.

    Args:
        vocab_size: linked from the data module's vocabulary (0 = take it from the data).
        camera: camera configuration (preset privacy / defocus / lowres / ideal and optics).
        backbone … dropout: captioner options (see captioning.model.CaptionerConfig):
            backbone one of captioning.encoder.BACKBONES (torchvision ResNets, timm's
            efficientnet_lite0); weights none / imagenet / a torchvision enum name / a file;
            feature_stage the stage whose map makes the grid (None: the backbone's default);
            grid_positions adds a learned embedding of each grid cell's position to its
            feature (captioning.decoder.GridPositions; off: the published decoder).
        cnn_input_size: captured images are resized to this square size for the CNN
            (null: as captured).
        w_dec, dsr_lambda, w_distortion, w_psf_mask: loss weights (published 0.4, 1, 6, 30).
        psf_mask_radius_px: radius of the PSF mask M in PSF pixels (published 32 of 256).
        w_sampling: weight of the lens's aliasing guard (``ZernikeLens.phase_step_excess``,
            rad²; 0 while every phase step between pupil samples is under 0.9 π, so it only
            acts when a privacy term pushes the surface towards aliasing; 0 turns it off).
        w_attack: weight of the Wiener leakage L_W (not in the published loss; 0 = off): the
            mean SSIM that the non-blind Wiener attacker (known PSF, each image's best K of
            ``attack_ks``) reaches on the batch. Minimising it trains the lens against the
            attack that ``evaluate.py attack`` runs. Validation logs it either way, as
            val/wiener_oracle_ssim, and the single best K's SSIM as val/wiener_ssim.
        attack_ks: the Wiener attacker's noise-to-signal ratios (default 1e-4 … 1, 5 values).
        w_otf_band: weight of the band-MTF term (not in the published loss; 0 = off): the
            PSF's mean MTF over the radial frequencies ``otf_band_cpp`` = [low, high) cycles
            per pixel (default [1/16, √2/2]: everything above the band the shapes need), so the
            lens passes nothing there for an attacker to invert (``optics.band_mtf_loss``).
        adversary: "none" (default), "unet" or "wiener_unet" (the in-loop attackers of
            ``attacks.attackers.ATTACKERS``): min–max training against an
            attacker network trained in the loop on the current lens's (capture, original)
            pairs (``attacks.adversary``), alternating with the lens + captioner step; the
            lens loss adds w_adversary · SSIM(attacker(capture), original). Validation logs
            the attacker's SSIM as val/adversary_ssim; its state is in the checkpoint.
        w_adversary: weight of that term (0: the attacker trains and is logged, the lens
            ignores it).
        adversary_warmup_steps: lens steps before the term switches on (the attacker trains
            from the start); adversary_steps: attacker updates per lens update;
            adversary_lr: the attacker's Adam learning rate; adversary_channels,
            adversary_depth: its U-Net's width and number of poolings.
        adversary_pretrain_epochs: before the first lens step, train the attacker alone on the
            frozen starting lens for at most this many epochs of the training set, stopping
            once adversary_pretrain_patience epochs gain < 0.002 held-out SSIM, so min–max
            starts against a converged attacker (``endtoend.adversary_pretrain``; resumable).
            0 (default): the attacker starts untrained.
        lr_camera: Adam learning rate of the Zernike coefficients, in µm per step (Adam's
            step size is ≈ lr regardless of gradient scale).
        lr_encoder, lr_decoder: published 1e-4 and 5e-4.
        scheduler: "cosine" (to 0 over the run, after warmup_steps) or "constant".
        val_beam_size: beam for validation captions (1 = greedy, fast); test_beam_size for test.
        blind: the captioner sees a constant grey image instead of the capture: the language
            prior alone, the baseline every caption metric is read against (use with the
            ``ideal`` preset; the optics are not trained).
        w_scene_labels: weight of an auxiliary multi-label loss (BCE) on the encoder's mean
            feature: which shapes, colours and background the scene holds, from the data set's
            ground truth (embedded data set only). The stand-in for the object/attribute
            supervision of bottom-up captioning features and of ImageNet weights, which an
            offline demo cannot download: a random ResNet learns to see from captions alone
            far slower than the CPU budget allows. 0 = off (the published loss).
        init_from: a training checkpoint (``…/best.ckpt``) whose captioner weights start this
            run (same vocabulary and captioner sizes): e.g. every lens preset starts from the
            ideal camera's captioner, so the lens is trained by a captioner that already sees.
    """

    def __init__(
        self,
        vocab_size: int = 0,
        camera: CameraConfig | None = None,
        backbone: str = "resnet101",
        weights: str | None = None,
        grid_size: int | None = 7,
        trainable_from: str | None = "layer4",
        channels_last: bool = False,
        feature_stage: str | None = None,
        embed_dim: int = 1000,
        hidden_dim: int = 1000,
        attention_dim: int = 512,
        dropout: float = 0.5,
        grid_positions: bool = False,
        cnn_input_size: int | None = 224,
        w_dec: float = 0.4,
        dsr_lambda: float = 1.0,
        w_distortion: float = 6.0,
        w_psf_mask: float = 30.0,
        psf_mask_radius_px: float = 32.0,
        w_sampling: float = 1.0,
        w_attack: float = 0.0,
        attack_ks: list[float] | None = None,
        w_otf_band: float = 0.0,
        otf_band_cpp: list[float] | None = None,
        adversary: str = "none",
        w_adversary: float = 0.0,
        adversary_warmup_steps: int = 0,
        adversary_steps: int = 1,
        adversary_lr: float = 1e-3,
        adversary_channels: int = 16,
        adversary_depth: int = 3,
        adversary_pretrain_epochs: int = 0,
        adversary_pretrain_patience: int = 2,
        lr_camera: float = 1e-3,
        lr_encoder: float = 1e-4,
        lr_decoder: float = 5e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        scheduler: str = "cosine",
        val_beam_size: int = 1,
        test_beam_size: int = 3,
        max_decode_len: int = 20,
        log_images: int = 8,
        blind: bool = False,
        w_scene_labels: float = 0.0,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        check_options(locals())
        if camera is None:
            camera = CameraConfig()
        elif not isinstance(camera, CameraConfig):
            camera = CameraConfig.from_dict(camera)
        check_camera_options(locals(), camera.lens.psf_size_px, camera.has_lens)
        self.save_hyperparameters(ignore=["camera"])
        self.hparams["camera"] = camera.to_dict()  # plain dict: optics.load_camera reads it
        self.camera = Camera(camera)
        self.captioner_config = CaptionerConfig(
            vocab_size=vocab_size, **{name: self.hparams[name] for name in CAPTIONER_FIELDS}
        )
        self.captioner = Captioner(self.captioner_config)
        if blind:
            # one grey image has no batch statistics worth learning: BatchNorm in train mode
            # normalised it by its own (near-zero) spatial variance, so the features at test
            # time (running statistics) were not the ones the decoder learnt on, and the blind
            # row fell to CIDEr-D ≈ 0. Frozen, the features are one constant, as intended.
            self.captioner.encoder.freeze()
        self.label_head = (
            torch.nn.Linear(self.captioner.encoder.out_channels, len(SCENE_LABELS))
            if w_scene_labels > 0 and not blind
            else None
        )
        self._label_table: dict[int, torch.Tensor] = {}
        self.vocab: Vocabulary | None = None
        self.eval_split: str | None = None  # references for test(): None → "test"
        self.last_eval: dict[str, Any] = {}
        self.eval_rows = PerImageRows()  # per-image val/test outputs, gathered across ranks
        self.eval_examples: dict[str, Any] | None = None  # the first batch, for figures
        self._adversary = self._build_adversary()
        self._adversary_batch: tuple[torch.Tensor, ...] | None = None

    def _build_adversary(self) -> InLoopAdversary | None:
        """The in-loop attacker (``model.adversary``), kept outside the module tree (see
        ``attacks.adversary``); None when off."""
        hp = self.hparams
        if hp.adversary == "none":
            return None
        sensor = self.camera.sensor
        return InLoopAdversary(
            hp.adversary,
            hp.adversary_lr,
            hp.adversary_warmup_steps,
            hp.adversary_steps,
            hp.adversary_channels,
            hp.adversary_depth,
            sensor.response,
            sensor.gamma,
            bool(self.camera.config.linearize_input),
        )

    # ------------------------------------------------------------------ plumbing

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if dm is not None and getattr(dm, "vocab", None) is not None:
            if self.vocab is not None and self.vocab.itos != dm.vocab.itos:
                raise ValueError(
                    "the checkpoint's vocabulary differs from the one built from data.root; "
                    "evaluate with the data set the model was trained on"
                )
            self.vocab = dm.vocab
        self.captioner.vocab = self.vocab
        # in setup, not __init__: a resumed run's checkpoint is restored after this, and
        # load_from_checkpoint (evaluation) never calls it, so the file may be gone by then
        if stage == "fit" and self.hparams.get("init_from"):
            load_captioner_weights(self.captioner, self.hparams.init_from, self.label_head)
        if stage == "fit" and self.label_head is not None and dm is not None:
            self.use_scene_labels(dm.scenes("train"), dm.root)
        lens = self.camera.lens
        if stage == "fit" and lens is not None and not has_surface(lens):
            # a measured PSF: a fresh run needs its file now, not at the first batch (a
            # resumed run's checkpoint brings the PSF after this)
            if self._trainer is None or self.trainer.ckpt_path is None:
                lens()

    def on_train_start(self) -> None:
        pretrain_adversary(self)  # a no-op unless model.adversary_pretrain_epochs > 0

    def use_scene_labels(self, scenes: dict[int, dict[str, Any]], root: Path | str = "") -> None:
        """Targets of the scene-label term: image id -> multi-hot over SCENE_LABELS."""
        if not scenes:
            raise ValueError(
                "model.w_scene_labels > 0 needs ground-truth scenes (the embedded data set's "
                f"'scene' fields); data.root {root} has none: set model.w_scene_labels 0"
            )
        self._label_table = {i: torch.tensor(scene_labels(s)) for i, s in scenes.items()}

    def configure_callbacks(self) -> list[L.Callback]:
        """The model's own callbacks, with any Trainer: vocab.json, the DDP lens check and the
        TensorBoard figures; and no warning about the frozen stages' eval mode."""
        return [VocabularyWriter(), LensConsistencyCheck(), EvalFigures(), FrozenStagesNote()]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.vocab is not None:
            checkpoint["vocab"] = self.vocab.to_dict()
        checkpoint["captioner_config"] = asdict(self.captioner_config)
        if self._adversary is not None:
            checkpoint["adversary"] = self._adversary.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "vocab" in checkpoint:
            self.vocab = Vocabulary.from_dict(checkpoint["vocab"])
            self.captioner.vocab = self.vocab
        if self._adversary is not None and "adversary" in checkpoint:
            self._adversary.load_state_dict(checkpoint["adversary"])

    # ------------------------------------------------------------------ forward

    def capture(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Scenes (B, 3, H, W) in [0, 1] → captures; the optics always run in float32."""
        with torch.autocast(device_type=images.device.type, enabled=False):
            return self.camera.capture(images.float(), generator)

    def cnn_input(self, captured: torch.Tensor) -> torch.Tensor:
        """Captures (B, 3, H, W) → CNN input (B, 3, S, S): resized, or grey when blind."""
        if self.hparams.get("blind", False):
            size = self.hparams.cnn_input_size or captured.shape[-1]
            return captured.new_full((captured.shape[0], 3, size, size), 0.5)
        size = self.hparams.cnn_input_size
        if size is None or (captured.shape[-1] == size and captured.shape[-2] == size):
            return captured
        return F.interpolate(
            captured, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )

    def losses(self, batch: CaptionBatch) -> dict[str, torch.Tensor]:
        images = batch.float_images()
        captured, psf = self.capture(images)
        x = self.cnn_input(captured)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        caption_to_image = batch.caption_to_image
        if self.hparams.get("blind", False):  # every image is the same grey: encode it once
            x, caption_to_image = x[:1], torch.zeros_like(caption_to_image)
        grid, mean = self.captioner.encode(x)
        logits, alphas = self.captioner.decoder(grid, mean, batch.captions, caption_to_image)
        targets = batch.captions[:, 1:]
        ce = caption_loss(logits, targets, Vocabulary.pad_id)
        dsr = doubly_stochastic_loss(alphas, targets != Vocabulary.pad_id)
        dist = distortion_loss(captured, images)
        mask = psf_mask_loss(psf, self.hparams.psf_mask_radius_px) if psf is not None else ce * 0
        hp = self.hparams
        total = (
            hp.w_dec * (ce + hp.dsr_lambda * dsr) + hp.w_distortion * dist + hp.w_psf_mask * mask
        )
        terms = {"ce": ce, "dsr": dsr, "distortion": dist, "psf_mask": mask}
        lens = getattr(self.camera, "lens", None)
        if hp.w_sampling > 0 and has_surface(lens) and self.training:
            # 0 until a phase step nears π: keeps the lens where its simulated PSF is its own;
            # float32 like the capture (bf16 cannot resolve steps of an unwrapped phase)
            with torch.autocast(device_type=images.device.type, enabled=False):
                terms["phase_aliasing"] = lens.phase_step_excess()
            total = total + hp.w_sampling * terms["phase_aliasing"]
        if self.label_head is not None and self.training:
            missing = [i for i in batch.image_ids.tolist() if i not in self._label_table]
            if missing:
                raise RuntimeError(
                    f"model.w_scene_labels: no scene labels for image ids {missing[:5]}; fit "
                    "calls use_scene_labels(datamodule.scenes('train')) in setup, call it "
                    "yourself when using losses() outside a Trainer"
                )
            labels = torch.stack([self._label_table[i] for i in batch.image_ids.tolist()])
            terms["scene_labels"] = F.binary_cross_entropy_with_logits(
                self.label_head(mean.float()), labels.to(mean.device)
            )
            total = total + hp.w_scene_labels * terms["scene_labels"]
        if hp.w_otf_band > 0 and psf is not None:
            band = hp.otf_band_cpp or DEFAULT_OTF_BAND_CPP
            terms["otf_band_mtf"] = band_mtf_loss(psf, (band[0], band[1]))
            total = total + hp.w_otf_band * terms["otf_band_mtf"]
        if hp.w_attack > 0 and psf is not None:
            terms["wiener_leakage"], _ = self.wiener_scores(captured, images, psf)
            total = total + hp.w_attack * terms["wiener_leakage"]
        if self._adversary is not None:
            if self.training:  # the attacker's own step follows the lens step on these pairs
                self._adversary_batch = (
                    captured.detach(),
                    images.detach(),
                    None if psf is None else psf.detach(),
                )
            if hp.w_adversary > 0 and self._adversary.active(self.global_step):
                terms["adversary_ssim"] = self._adversary.leakage(captured, images, psf)
                total = total + hp.w_adversary * terms["adversary_ssim"]
        return {"loss": total, **terms}

    def wiener_scores(
        self, captured: torch.Tensor, images: torch.Tensor, psf: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The non-blind Wiener attacker on this batch: (leakage = mean per-image best-K SSIM,
        (N_k, B) SSIM of every K on every image)."""
        ks = self.hparams.attack_ks or DEFAULT_ATTACK_KS
        response = Response.from_camera(self.camera)
        with torch.autocast(device_type=captured.device.type, enabled=False):
            return wiener_leakage(
                captured.float(),
                images.float(),
                psf.float(),
                ks,
                response.to_linear,
                response.to_scene,
            )

    def training_step(self, batch: CaptionBatch, batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch)
        b = batch.images.shape[0]
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=b)
        self.log_dict(
            {f"train/{k}": v for k, v in terms.items() if k != "loss"}, prog_bar=True, batch_size=b
        )
        return terms["loss"]

    def on_after_backward(self) -> None:
        """Min–max: once the lens + captioner gradients are in (computed against the attacker as
        it was), the in-loop attacker's update(s) on the same (capture, original) pairs; then
        the lens step. Both are done before any checkpoint of this step is written."""
        if self._adversary is not None and self._adversary_batch is not None:
            loss = self._adversary.train_step(*self._adversary_batch)
            b = len(self._adversary_batch[0])
            self._adversary_batch = None
            self.log("train/adversary_loss", loss, batch_size=b)

    # ------------------------------------------------------------------ optimisation

    def param_groups(self) -> list[dict[str, Any]]:
        """Adam parameter groups with their own learning rates: camera, encoder, decoder (with
        the scene-label head)."""
        hp = self.hparams
        groups = []
        camera_params = [p for p in self.camera.parameters() if p.requires_grad]
        if camera_params:
            groups.append(
                {"params": camera_params, "lr": hp.lr_camera, "weight_decay": 0.0, "name": "camera"}
            )
        enc = [p for p in self.captioner.encoder.parameters() if p.requires_grad]
        if enc:
            groups.append({"params": enc, "lr": hp.lr_encoder, "name": "encoder"})
        head = [*(self.label_head.parameters() if self.label_head is not None else ())]
        if self.captioner.positions is not None:  # decoder-side: learns with the decoder
            head += list(self.captioner.positions.parameters())
        groups.append(
            {"params": [*self.captioner.decoder.parameters(), *head], "lr": hp.lr_decoder,
             "name": "decoder"}
        )  # fmt: skip
        return groups

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.Adam(self.param_groups(), weight_decay=hp.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = warmup_then_decay(optimizer, total, int(hp.warmup_steps), hp.scheduler)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

"""privcam end-to-end trainer: camera (optics) → ResNet encoder → top-down decoder, one model.

    python train.py fit --config configs/coco_privacy.yaml --data.root /data/coco
    python train.py fit --config configs/demo.yaml
    python train.py fit --config configs/coco_privacy.yaml --ckpt_path last     # resume
    python train.py test --config configs/coco_privacy.yaml --ckpt_path runs/…/best.ckpt

Loss: L = w_dec·(L_ce + λ·L_dsr) + w_p·L_p + w_H·L_H (published 0.4, λ = 1, 6, 30)
      [+ w_attack·L_W, the non-blind Wiener attacker's SSIM; off by default].
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningCLI

from attacks.adversary import ADVERSARIES, InLoopAdversary
from attacks.losses import wiener_leakage
from attacks.metrics import ssim as attack_ssim
from attacks.nonblind import Response
from captioning.data import (
    SPLITS,
    CaptionBatch,
    CaptionDataset,
    collate_captions,
    ensure_prepared,
    load_records,
    read_json,
)
from captioning.decoder import caption_loss, doubly_stochastic_loss
from captioning.grounding import SCENE_LABELS, grounding_scores, scene_labels
from captioning.metrics import fast_scores, score_captions
from captioning.model import Captioner, CaptionerConfig
from captioning.vocab import Vocabulary
from optics import Camera, CameraConfig, distortion_loss, psf_mask_loss
from optics.cli_errors import WorkFailed, run_cli

log = logging.getLogger("privcam.train")

# noise-to-signal ratios the training-time Wiener attacker tries (val/wiener_ssim, w_attack)
DEFAULT_ATTACK_KS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)

__all__ = ["CaptionDataModule", "PrivacyCaptioner", "cli_main"]


# ============================================================================ data


class CaptionDataModule(L.LightningDataModule):
    """COCO/Karpathy-format caption data as prepared uint8 arrays.

    Args:
        root: data root with ``dataset_coco.json`` (Karpathy) and/or COCO caption files and
            images (``train2014/ val2014/ annotations/``).
        generate_embedded: if ``root`` holds no data set, generate privcam's embedded
            (synthetic) one there first, with the ``embedded_*`` sizes.
        image_size: square size of the prepared arrays = the scene size seen by the camera.
        batch_size: images per training batch (each with ``captions_per_image`` captions).
        max_eval_images: use only the first N images of val/test (fast validation).
    """

    def __init__(
        self,
        root: str = "data/embedded",
        generate_embedded: bool = False,
        embedded_train: int = 3000,
        embedded_val: int = 300,
        embedded_test: int = 300,
        embedded_image_size: int = 128,
        embedded_seed: int = 0,
        image_size: int = 256,
        prepared_dir: str | None = None,
        format: str = "auto",
        on_corrupt: str = "skip",
        batch_size: int = 32,
        eval_batch_size: int = 64,
        captions_per_image: int = 5,
        min_word_count: int = 5,
        max_caption_tokens: int = 16,
        max_eval_images: int | None = None,
        num_workers: int = 2,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        for name in (
            "image_size",
            "batch_size",
            "eval_batch_size",
            "captions_per_image",
            "min_word_count",
            "max_caption_tokens",
        ):
            if int(getattr(self.hparams, name)) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self.hparams, name)}")
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8 pixels, got {image_size}")
        if format not in ("auto", "karpathy", "coco"):
            raise ValueError(f"data.format must be 'auto', 'karpathy' or 'coco', got {format!r}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        self.root = Path(root)
        if generate_embedded and not (self.root / "dataset_coco.json").exists():
            _generate_embedded(
                self.root,
                embedded_train,
                embedded_val,
                embedded_test,
                embedded_image_size,
                embedded_seed,
            )
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(
                f"data.root {self.root} is a file; pass the data set folder (dataset_coco.json, "
                "images) with --data.root"
            )
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"data.root {self.root} does not exist: pass --data.root /path/to/coco "
                "(train2014/ val2014/ annotations/ dataset_coco.json) or "
                "--data.generate_embedded true to create the embedded data set there"
            )
        self.prepared_dir = (
            Path(prepared_dir) if prepared_dir else self.root / f"prepared_{image_size}"
        )
        train_records = load_records(self.root, "train", format)
        self.vocab = Vocabulary.build(
            [c for r in train_records for c in r.captions], min_word_count, max_caption_tokens
        )
        self.vocab_size = len(self.vocab)
        self.datasets: dict[str, CaptionDataset] = {}
        self.test_split = "test"  # evaluate.py points test() at "val" with this

    def prepare_data(self) -> None:
        """Write the resized uint8 arrays once (rank 0); epochs then decode no image files."""
        for split in SPLITS:
            try:
                records = load_records(self.root, split, self.hparams.format)
            except FileNotFoundError:
                if split == "test":  # COCO files alone have no test split
                    continue
                raise
            # rebuilt when the images, image list or size changed; index only for captions
            ensure_prepared(
                records, self.prepared_dir, split, self.hparams.image_size, self.hparams.on_corrupt
            )
        self._prepared_checked = True

    def _dataset(self, split: str) -> CaptionDataset:
        if split not in self.datasets:
            if not getattr(self, "_prepared_checked", False):  # outside a Trainer
                self.prepare_data()
            index = read_json(self.prepared_dir / f"{split}_index.json", "a prepared split index")
            if int(index["size"]) != self.hparams.image_size:
                raise ValueError(
                    f"{self.prepared_dir} holds {index['size']}² images but data.image_size is "
                    f"{self.hparams.image_size}; set data.prepared_dir to another folder"
                )
            ds = CaptionDataset.from_prepared(
                self.prepared_dir,
                split,
                self.vocab,
                self.hparams.captions_per_image,
                seed=self.hparams.seed,
            )
            limit = self.hparams.max_eval_images
            if split != "train" and limit is not None and limit < len(ds):
                ds.records = ds.records[:limit]
                ds._encoded = ds._encoded[:limit]
            self.datasets[split] = ds
        return self.datasets[split]

    def references(self, split: str) -> dict[int, list[str]]:
        return self._dataset(split).references

    def scenes(self, split: str) -> dict[int, dict[str, Any]]:
        """image id -> ground-truth ``scene`` (embedded data set only; empty otherwise)."""
        extras = ((r.image_id, dict(r.extra)) for r in self._dataset(split).records)
        return {image_id: extra["scene"] for image_id, extra in extras if "scene" in extra}

    def _loader(self, split: str, train: bool) -> torch.utils.data.DataLoader:
        # more worker processes than usable CPUs only adds contention (benchmarks/bench_input.py:
        # 8 workers on 2 cores cost ~30 % more CPU per image than 2)
        workers = min(self.hparams.num_workers, available_cpus())
        if workers < self.hparams.num_workers and train:
            log.info("data.num_workers=%d capped at the %d CPUs this process may use",
                     self.hparams.num_workers, workers)
        return torch.utils.data.DataLoader(
            self._dataset(split),
            batch_size=self.hparams.batch_size if train else self.hparams.eval_batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=workers,
            collate_fn=collate_captions,
            pin_memory=self.hparams.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.hparams.persistent_workers and workers > 0,
        )

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.test_split, False)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a cgroup/SLURM allocation)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _generate_embedded(root: Path, train: int, val: int, test: int, size: int, seed: int) -> None:
    from captioning.synthetic import write_dataset

    tmp = root.with_name(f"{root.name}.tmp{os.getpid()}")
    log.info("generating the embedded data set in %s", root)
    write_dataset(tmp, seed=seed, train=train, val=val, test=test, size=size)
    try:
        tmp.rename(root)
    except OSError:  # another process (DDP rank) finished first: identical content
        shutil.rmtree(tmp, ignore_errors=True)


# ============================================================================ model


class PrivacyCaptioner(L.LightningModule):
    """Camera + captioner trained end to end.

    Args:
        vocab_size: linked from the data module's vocabulary (0 = take it from the data).
        camera: camera configuration (preset privacy / defocus / lowres / ideal and optics).
        backbone … dropout: captioner options (see captioning.model.CaptionerConfig).
        cnn_input_size: captured images are resized to this square size for the CNN
            (null: as captured).
        w_dec, dsr_lambda, w_distortion, w_psf_mask: loss weights (published 0.4, 1, 6, 30).
        psf_mask_radius_px: radius of the PSF mask M in PSF pixels (published 32 of 256).
        w_attack: weight of the Wiener leakage L_W (not in the published loss; 0 = off): the
            mean SSIM that the non-blind Wiener attacker (known PSF, each image's best K of
            ``attack_ks``) reaches on the batch. Minimising it trains the lens against the
            attack that ``evaluate.py attack`` runs. Validation logs it either way, as
            val/wiener_oracle_ssim, and the single best K's SSIM as val/wiener_ssim.
        attack_ks: the Wiener attacker's noise-to-signal ratios (default 1e-4 … 1, 5 values).
        adversary: "none" (default), "unet" or "wiener_unet": min–max training against an
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
        camera: CameraConfig | dict | None = None,
        backbone: str = "resnet101",
        weights: str | None = None,
        grid_size: int | None = 7,
        trainable_from: str | None = "layer4",
        channels_last: bool = False,
        embed_dim: int = 1000,
        hidden_dim: int = 1000,
        attention_dim: int = 512,
        dropout: float = 0.5,
        cnn_input_size: int | None = 224,
        w_dec: float = 0.4,
        dsr_lambda: float = 1.0,
        w_distortion: float = 6.0,
        w_psf_mask: float = 30.0,
        psf_mask_radius_px: float = 32.0,
        w_attack: float = 0.0,
        attack_ks: list[float] | None = None,
        adversary: str = "none",
        w_adversary: float = 0.0,
        adversary_warmup_steps: int = 0,
        adversary_steps: int = 1,
        adversary_lr: float = 1e-3,
        adversary_channels: int = 16,
        adversary_depth: int = 3,
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
        for name in (
            "w_dec",
            "dsr_lambda",
            "w_distortion",
            "w_psf_mask",
            "w_attack",
            "lr_camera",
            "lr_encoder",
            "lr_decoder",
            "weight_decay",
            "warmup_steps",
        ):
            value = locals()[name]
            if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
                raise ValueError(f"model.{name} must be a finite number >= 0, got {value!r}")
        if attack_ks is not None and (
            len(attack_ks) == 0 or not all(isinstance(k, (int, float)) and k > 0 for k in attack_ks)
        ):
            raise ValueError(
                f"model.attack_ks must be a non-empty list of noise-to-signal ratios > 0, "
                f"got {attack_ks!r}"
            )
        if scheduler not in ("cosine", "constant"):
            raise ValueError(f"model.scheduler must be 'cosine' or 'constant', got {scheduler!r}")
        if vocab_size < 5:
            raise ValueError(
                f"model.vocab_size={vocab_size}: it is linked from the data module's vocabulary; "
                "build the model through train.py (LightningCLI) or pass the vocabulary size"
            )
        if camera is None:
            camera = CameraConfig()
        elif not isinstance(camera, CameraConfig):
            camera = CameraConfig.from_dict(camera)
        self.save_hyperparameters(ignore=["camera"])
        self.hparams["camera"] = camera.to_dict()  # plain dict: optics.load_camera reads it
        self.camera = Camera(camera)
        self.captioner_config = CaptionerConfig(
            vocab_size=vocab_size,
            backbone=backbone,
            weights=weights,
            grid_size=grid_size,
            trainable_from=trainable_from,
            channels_last=channels_last,
            embed_dim=embed_dim,
            hidden_dim=hidden_dim,
            attention_dim=attention_dim,
            dropout=dropout,
        )
        self.captioner = Captioner(self.captioner_config)
        if not (math.isfinite(w_scene_labels) and w_scene_labels >= 0):
            raise ValueError(f"model.w_scene_labels must be a finite number >= 0, got "
                             f"{w_scene_labels!r}")
        self.label_head = (
            torch.nn.Linear(self.captioner.encoder.out_channels, len(SCENE_LABELS))
            if w_scene_labels > 0 and not blind
            else None
        )
        self._label_table: dict[int, torch.Tensor] = {}
        self.vocab: Vocabulary | None = None
        self.eval_split: str | None = None  # references for test(): None → "test"
        self.last_eval: dict[str, Any] = {}
        self._eval_outputs: list[dict[str, Any]] = []
        self._eval_examples: dict[str, torch.Tensor] | None = None
        self._adversary = self._build_adversary()
        self._adversary_batch: tuple[torch.Tensor, ...] | None = None

    def _build_adversary(self) -> InLoopAdversary | None:
        """The in-loop attacker (``model.adversary``), kept outside the module tree (see
        ``attacks.adversary``); None when off."""
        hp = self.hparams
        if hp.adversary not in ADVERSARIES:
            raise ValueError(
                f"model.adversary must be one of {list(ADVERSARIES)}, got {hp.adversary!r}"
            )
        w = hp.w_adversary
        if not (isinstance(w, (int, float)) and w >= 0 and math.isfinite(w)):
            raise ValueError(f"model.w_adversary must be a finite number >= 0, got {w!r}")
        if hp.adversary == "none":
            if w > 0:
                raise ValueError("model.w_adversary > 0 needs an attacker: set model.adversary "
                                 f"to one of {list(ADVERSARIES[1:])}")
            return None
        sensor = self.camera.sensor
        return InLoopAdversary(
            hp.adversary, hp.adversary_lr, hp.adversary_warmup_steps, hp.adversary_steps,
            hp.adversary_channels, hp.adversary_depth, sensor.response, sensor.gamma,
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

    def use_scene_labels(self, scenes: dict[int, dict[str, Any]], root: Path | str = "") -> None:
        """Targets of the scene-label term: image id -> multi-hot over SCENE_LABELS."""
        if not scenes:
            raise ValueError(
                "model.w_scene_labels > 0 needs ground-truth scenes (the embedded data set's "
                f"'scene' fields); data.root {root} has none: set model.w_scene_labels 0"
            )
        self._label_table = {i: torch.tensor(scene_labels(s)) for i, s in scenes.items()}

    def on_fit_start(self) -> None:
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if self.vocab is not None and self.trainer.is_global_zero and log_dir:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            self.vocab.save(Path(log_dir) / "vocab.json")

    def on_train_end(self) -> None:
        """Under DDP, check that every rank ends with the same lens (gradients are all-reduced,
        so any difference means a broken setup) and say so in the log."""
        lens = self.camera.lens
        if lens is None or not (
            torch.distributed.is_available() and torch.distributed.is_initialized()
        ):
            return
        coeffs = lens.coefficients_um().detach()
        gathered = self.all_gather(coeffs)  # (world, J)
        spread = float((gathered - gathered[0]).abs().max())
        if spread > 0:
            raise RuntimeError(f"lens coefficients differ across DDP ranks by {spread:g} µm")
        if self.trainer.is_global_zero:
            log.info("lens coefficients identical on %d ranks", gathered.shape[0])
        if self._adversary is not None:  # its gradients are averaged by attacks.adversary
            spread = self._adversary.max_weight_spread()
            if spread > 0:
                raise RuntimeError(f"in-loop attacker weights differ across ranks by {spread:g}")
            if self.trainer.is_global_zero:
                log.info("in-loop attacker identical on %d ranks", gathered.shape[0])

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
        if hp.w_attack > 0 and psf is not None:
            terms["wiener_leakage"], _ = self.wiener_scores(captured, images, psf)
            total = total + hp.w_attack * terms["wiener_leakage"]
        if self._adversary is not None:
            if self.training:  # the attacker's own step follows the lens step on these pairs
                self._adversary_batch = (captured.detach(), images.detach(),
                                         None if psf is None else psf.detach())
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

    # ------------------------------------------------------------------ evaluation

    def _eval_step(self, batch: CaptionBatch, beam_size: int) -> None:
        images = batch.float_images()
        captured, psf = self.capture(images)
        out = self.captioner.generate(
            self.cnn_input(captured), beam_size=beam_size, max_len=self.hparams.max_decode_len
        )
        captions = out.captions or self.vocab.decode_batch(out.tokens)
        ssim, psnr = image_quality(captured, images)
        # per-K Wiener SSIM (B, N_k) for lens cameras: the attacker's best K is chosen on the
        # whole split at epoch end
        wiener = self.wiener_per_image(captured, images, psf) if psf is not None else None
        adversary = (self._adversary.ssim_per_image(captured, images, psf)
                     if self._adversary is not None else None)
        for i, image_id in enumerate(batch.image_ids.tolist()):
            out = {
                "image_id": image_id,
                "caption": captions[i],
                "ssim": float(ssim[i]),
                "psnr": float(psnr[i]),
            }
            if wiener is not None:
                out["wiener_ssim_per_k"] = wiener[i].tolist()
            if adversary is not None:
                out["adversary_ssim"] = float(adversary[i])
            self._eval_outputs.append(out)
        if self._eval_examples is None:
            k = self.hparams.log_images
            self._eval_examples = {
                "images": images[:k].cpu(),
                "captured": captured[:k].cpu(),
                "captions": captions[:k],
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
        self._eval_outputs, self._eval_examples = [], None

    on_test_epoch_start = on_validation_epoch_start

    def gather_outputs(self) -> dict[int, dict[str, Any]]:
        """All ranks' per-image outputs, deduplicated by image id (DistributedSampler pads)."""
        outputs = self._eval_outputs
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[list[dict[str, Any]]] = [
                [] for _ in range(torch.distributed.get_world_size())
            ]
            torch.distributed.all_gather_object(gathered, outputs)
            outputs = [o for part in gathered for o in part]
        return {o["image_id"]: o for o in sorted(outputs, key=lambda o: o["image_id"])}

    def _eval_epoch_end(self, stage: str) -> dict[str, float]:
        per_image = self.gather_outputs()
        if not per_image:
            return {}
        split = self.eval_split or ("val" if stage == "val" else "test")
        refs = self.trainer.datamodule.references(split)
        candidates = {i: o["caption"] for i, o in per_image.items()}
        if stage == "val":
            scores = fast_scores(refs, candidates)
        else:
            scores = {k: v for k, v in score_captions(refs, candidates).items() if v is not None}
        metrics = {f"{stage}/{k}": 100.0 * v for k, v in scores.items()}
        metrics[f"{stage}/CIDEr"] = metrics.get(f"{stage}/CIDEr-D", 0.0)
        scenes = self.trainer.datamodule.scenes(split)
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
        if self.camera.lens is not None:
            metrics[f"{stage}/max_phase_step_rad"] = self.camera.lens.check_phase_sampling()
        # identical on every rank (computed from gathered outputs): no reduction needed
        self.log_dict(metrics, sync_dist=False, rank_zero_only=False)
        self.last_eval = {"metrics": metrics, "captions": candidates}
        if self.trainer.is_global_zero:
            self._log_figures(stage)
        return metrics

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def _log_figures(self, stage: str) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger

        tb = next((lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None or self._eval_examples is None:
            return
        writer, step = tb.experiment, self.global_step
        ex = self._eval_examples
        pairs = torch.cat([ex["images"], ex["captured"]], dim=-1).clamp(0, 1)
        writer.add_images(f"{stage}/original_vs_captured", pairs, step)
        writer.add_text(
            f"{stage}/captions",
            "\n\n".join(f"{i}: {c}" for i, c in enumerate(ex["captions"])),
            step,
        )
        lens = self.camera.lens
        if lens is not None:
            with torch.no_grad():
                psf = lens(height_noise=False).float().cpu()
                height = lens.height_map_um(include_base=False).float().cpu()
            for lam, p in zip(lens.wavelengths_nm, psf, strict=True):
                writer.add_image(f"{stage}/psf_{lam:g}nm", (p / p.max()).sqrt()[None], step)
            h = (height - height.min()) / (height.max() - height.min()).clamp_min(1e-12)
            writer.add_image(f"{stage}/height_map", h[None], step)

    # ------------------------------------------------------------------ optimisation

    def param_groups(self) -> list[dict[str, Any]]:
        """Adam parameter groups with their own learning rates: camera, encoder, decoder."""
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
        groups.append(
            {
                "params": [
                    *self.captioner.decoder.parameters(),
                    *(self.label_head.parameters() if self.label_head is not None else ()),
                ],
                "lr": hp.lr_decoder,
                "name": "decoder",
            }
        )
        return groups

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.Adam(self.param_groups(), weight_decay=hp.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(hp.warmup_steps)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if hp.scheduler == "constant":
                return 1.0
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def load_captioner_weights(
    captioner: Captioner, ckpt: str | Path, label_head: torch.nn.Module | None = None
) -> None:
    """Copy the captioner weights of a training checkpoint into ``captioner`` (same sizes),
    and its scene-label head into ``label_head`` when both have one."""
    path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.init_from: checkpoint {path} not found (expected runs/…/checkpoints/best.ckpt)"
        )
    state = torch.load(path, map_location="cpu", weights_only=False).get("state_dict", {})
    prefix = "captioner."
    weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise ValueError(f"model.init_from: {path} holds no captioner weights (not a privcam "
                         "training checkpoint)")
    head = {k[len("label_head.") :]: v for k, v in state.items() if k.startswith("label_head.")}
    try:
        captioner.load_state_dict(weights)
        if label_head is not None and head:
            label_head.load_state_dict(head)
    except RuntimeError as err:
        raise ValueError(
            f"model.init_from: the captioner in {path} does not fit this model's captioner "
            f"settings or vocabulary (train both on the same data with the same sizes): "
            f"{str(err).splitlines()[0]}"
        ) from err
    log.info("captioner initialised from %s", path)


def image_quality(
    captured: torch.Tensor, original: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image SSIM (Gaussian 11, σ 1.5, data range 1, RGB mean; ``attacks.metrics.ssim``,
    equal to scikit-image's) and PSNR (dB) → (B,), (B,)."""
    c, o = captured.float().clamp(0, 1), original.float()
    mse = (c - o).square().flatten(1).mean(1).clamp_min(1e-12)
    return attack_ssim(c, o), 10 * torch.log10(1.0 / mse)


# ============================================================================ safeguards


class NonFiniteLossStop(L.Callback):
    """Stop training at the first non-finite loss, before its backward pass (so no NaN reaches
    the weights or a checkpoint), with a message naming the step and the non-finite terms."""

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           loss: torch.Tensor) -> None:
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


# ============================================================================ CLI


class EpochProgress(L.Callback):
    """One log line per finished epoch (used when the progress bar is off, e.g. in `make
    demo` or a batch job): epoch, train loss, the headline validation metrics, time, ETA."""

    KEYS = ("val/grounding_f1", "val/CIDEr-D", "val/wiener_ssim", "val/adversary_ssim")

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._start = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import time

        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import time  # after the epoch's validation, so its metrics are this epoch's

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


class PrivcamCLI(LightningCLI):
    """LightningCLI with privcam's defaults: vocabulary size linked from the data, a checkpoint
    callback (best by val/CIDEr as best.ckpt, last.ckpt always, in <default_root_dir>/checkpoints
    so ``--ckpt_path last`` resumes), and TensorBoard + CSV loggers unless others are given."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        from lightning.pytorch.callbacks import ModelCheckpoint

        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/CIDEr",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best",
                "checkpoint.save_last": True,
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

        config = self._get(self.config_init, "trainer", default={})
        root = config.get("default_root_dir") or os.getcwd()
        if config.get("logger") in (None, True):
            tb = TensorBoardLogger(root, name="")
            # CSV next to the TensorBoard events: <root>/version_N/csv/metrics.csv
            kwargs["logger"] = [tb, CSVLogger(tb.log_dir, name="csv", version="")]
        trainer = super().instantiate_trainer(**kwargs)
        if not any(isinstance(cb, NonFiniteLossStop) for cb in trainer.callbacks):
            trainer.callbacks.append(NonFiniteLossStop())
        if not config.get("enable_progress_bar", True):  # no bar: one line per epoch instead
            trainer.callbacks.append(EpochProgress())
        for cb in trainer.checkpoint_callbacks:
            if cb.dirpath is None:
                cb.dirpath = os.path.join(root, "checkpoints")
        return trainer


def cli_main(
    args: Sequence[str] | None = None, run: bool = True, exit_on_error: bool = True
) -> PrivcamCLI:
    """LightningCLI entry point (``args`` like sys.argv[1:]).

    ``exit_on_error=False`` raises argument errors (``argparse.ArgumentError``) instead of
    printing the usage and exiting; :func:`main` turns them into privcam's one-line errors.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_float32_matmul_precision("high")
    return PrivcamCLI(
        PrivacyCaptioner,
        CaptionDataModule,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "default_env": False,
            "exit_on_error": exit_on_error,
        },
    )


def _option_error(message: str, args: Sequence[str]) -> str:
    """jsonargparse's multi-line errors as one line: the sub-error that names the problem
    (not the tried Union subtypes and the echoed namespace), the config file when it is one."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    useful = [ln[2:] for ln in lines if ln.startswith("- ") and not ln.startswith("- Expected a")]
    if useful:
        key = next((ln for ln in lines if ln.startswith("Parser key")), "")
        lines = [key.rstrip(":") + ":" if key else "", useful[0]]
    text = " ".join(ln for ln in lines if ln and not ln.startswith("Given value"))
    if "Problems parsing config" in text:
        configs = [b for a, b in itertools.pairwise(args) if a in ("-c", "--config")]
        text = f"--config {', '.join(configs)}: {text}" if configs else text
    return text


def _check_ckpt_path(args: Sequence[str]) -> None:
    """``--ckpt_path FILE`` must be a readable end-to-end training checkpoint: an empty,
    truncated or wrong-kind file (attacker, captioner, camera) is named before anything runs."""
    from optics.camera import checkpoint_kind, describe_checkpoint_kind, read_checkpoint

    values = [b for a, b in itertools.pairwise(args) if a == "--ckpt_path"]
    values += [a.split("=", 1)[1] for a in args if a.startswith("--ckpt_path=")]
    for value in values:
        if value in ("last", "best", "hpc", "registry", "null", "None") or value.startswith(
            "registry:"
        ):
            continue
        try:
            kind = checkpoint_kind(read_checkpoint(value))
        except (OSError, ValueError) as err:
            raise type(err)(f"--ckpt_path: {err}") from err
        if kind != "training":
            raise ValueError(
                f"--ckpt_path {value} is {describe_checkpoint_kind(kind)}, not a privcam "
                "training checkpoint (runs/…/checkpoints/last.ckpt or best.ckpt)"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """``python train.py ...`` with privcam's error contract: bad options, configs and data give
    one line ``error: ...`` (exit 2), a failed run (non-finite loss) exit 1; ``--debug`` or
    ``PRIVCAM_DEBUG=1`` shows the traceback."""
    import sys

    def _run(args: list[str]) -> int:
        _check_ckpt_path(args)
        if argv is None:  # command line: LightningCLI reads sys.argv (warns when given both)
            sys.argv = [sys.argv[0], *args]
        try:
            cli_main(
                None if argv is None else args,
                exit_on_error=any(a in ("-h", "--help") for a in args),
            )
        except argparse.ArgumentError as err:
            raise ValueError(f"train.py: {_option_error(str(err), args)} (see `python train.py "
                             "fit --help`)") from err
        except ValueError as err:
            if "Union subtypes" not in str(err):
                raise
            raise ValueError(_option_error(str(err), args)) from err
        except MisconfigurationException as err:  # Lightning's own option checks
            raise ValueError(f"trainer options: {err}") from err
        return 0

    return run_cli(_run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

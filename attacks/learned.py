"""Learned blind attackers trained with Lightning on (capture, original) pairs.

* :class:`DeblurGANAttacker`: DeblurGAN-v2 recipe — FPN-MobileNetV2 generator, double-scale
  discriminator (PatchGAN, 3 layers + full-image, 5 layers), RaGAN-LS, content loss
  0.5·MSE + 0.006·VGG19-conv3_3 (or L1 + SSIM without VGG weights), Adam 1e-4 for G and D with
  linear decay, manual optimisation. No corruption augmentation: the attacker sees the camera's
  captures as they are (not even flips, which would flip the PSF).
* :class:`UNetAttacker`: a U-Net trained with the same content loss (no GAN).

:func:`train_attacker` fits either with CSV + TensorBoard logs and a resumable ``last.ckpt``;
:func:`load_attacker` reloads a Lightning checkpoint or an exported ``generator.pt``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .losses import content_loss, ragan_ls_d_loss, ragan_ls_g_loss
from .metrics import psnr, ssim
from .models import FPNMobileNetV2Generator, NLayerDiscriminator, UNet, VGG19Features

__all__ = [
    "ATTACKERS",
    "DeblurGANAttacker",
    "PairDataset",
    "UNetAttacker",
    "load_attacker",
    "reconstruct",
    "train_attacker",
]

log = logging.getLogger(__name__)


class PairDataset(Dataset):
    """(capture, original) pairs from (N, H, W, 3) uint8 arrays → ((3, H, W), (3, H, W)) float
    in [0, 1]."""

    def __init__(self, captures: np.ndarray, originals: np.ndarray) -> None:
        if len(captures) != len(originals) or captures.shape != originals.shape:
            raise ValueError(
                f"mismatched pairs: {len(captures)} captures {captures.shape[1:]} vs "
                f"{len(originals)} originals {originals.shape[1:]}; pass one original per capture"
            )
        if len(captures) == 0:
            raise ValueError("no training pairs: the attacker-train split is empty")
        self.captures = torch.from_numpy(np.ascontiguousarray(captures)).permute(0, 3, 1, 2)
        self.originals = torch.from_numpy(np.ascontiguousarray(originals)).permute(0, 3, 1, 2)

    def __len__(self) -> int:
        return len(self.captures)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.captures[i].float() / 255, self.originals[i].float() / 255


def _linear_decay(lr: float, min_lr: float, epochs: int):
    ratio = min_lr / lr

    def factor(epoch: int) -> float:
        return 1.0 - (1.0 - ratio) * min(epoch / max(epochs, 1), 1.0)

    return factor


def _perceptual(vgg_weights: str | None) -> tuple[VGG19Features | None, str]:
    if not vgg_weights:
        return None, "L1 + (1 - SSIM) (no VGG19 weights given)"
    try:
        vgg = VGG19Features(vgg_weights)
    except (RuntimeError, OSError) as err:
        log.warning("VGG19 perceptual loss unavailable (%s); using L1 + SSIM", err)
        return None, f"L1 + (1 - SSIM) (VGG19 weights {vgg_weights} unavailable)"
    return vgg, f"0.5 MSE + 0.006 VGG19-conv3_3 ({vgg.weights_note})"


class _AttackerBase(L.LightningModule):
    generator: torch.nn.Module

    def _setup_content(self, vgg_weights: str | None) -> None:
        vgg, self.content_note = _perceptual(vgg_weights)
        # Kept out of the state dict (frozen, reloaded from its own weights).
        self._vgg = [vgg] if vgg is not None else []

    def _features(self):
        if not self._vgg:
            return None
        if self._vgg[0].mean.device != self.device:
            self._vgg[0].to(self.device)
        return self._vgg[0]

    def forward(self, captures: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) captures in [0, 1] → reconstructions (B, 3, H, W) in [0, 1]."""
        return self.generator(captures)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        cap, ori = batch
        rec = self.generator(cap)
        self.log_dict({"val_ssim": ssim(rec, ori).mean(), "val_psnr": psnr(rec, ori).mean(),
                       "val_content": content_loss(rec, ori, self._features())},
                      prog_bar=False, batch_size=len(cap))


class DeblurGANAttacker(_AttackerBase):
    """DeblurGAN-v2-style blind attacker (see module docstring)."""

    def __init__(
        self,
        backbone_weights: str | None = None,
        vgg_weights: str | None = None,
        lr: float = 1e-4,
        min_lr: float = 1e-7,
        adv_lambda: float = 1e-3,
        num_filters: int = 64,
        ndf: int = 64,
        decay_epochs: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = FPNMobileNetV2Generator(backbone_weights, num_filters, 2 * num_filters)
        self.patch_d = NLayerDiscriminator(3, ndf)
        self.full_d = NLayerDiscriminator(5, ndf)
        self._setup_content(vgg_weights)

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (ragan_ls_d_loss(self.patch_d(real), self.patch_d(fake))
                      + ragan_ls_d_loss(self.full_d(real), self.full_d(fake)))

    def _g_adv(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            real_p, real_f = self.patch_d(real), self.full_d(real)
        return 0.5 * (ragan_ls_g_loss(real_p, self.patch_d(fake))
                      + ragan_ls_g_loss(real_f, self.full_d(fake)))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        cap, ori = batch
        opt_g, opt_d = self.optimizers()
        fake = self.generator(cap)
        d_loss = self._d_loss(ori, fake.detach())
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        content = content_loss(fake, ori, self._features())
        adv = self._g_adv(ori, fake)
        g_loss = content + self.hparams.adv_lambda * adv
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.log_dict({"train_content": content, "train_g_adv": adv, "train_d": d_loss,
                       "train_g": g_loss}, on_step=True, on_epoch=True, batch_size=len(cap))
        return g_loss

    def on_train_epoch_end(self) -> None:
        for sched in self.lr_schedulers():
            sched.step()

    def configure_optimizers(self):
        epochs = self.hparams.decay_epochs or (self.trainer.max_epochs if self._trainer else 1)
        lr, min_lr = self.hparams.lr, self.hparams.min_lr
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr)
        opt_d = torch.optim.Adam([*self.patch_d.parameters(), *self.full_d.parameters()], lr=lr)
        decay = _linear_decay(lr, min_lr, epochs)
        return ([opt_g, opt_d], [torch.optim.lr_scheduler.LambdaLR(opt_g, decay),
                                 torch.optim.lr_scheduler.LambdaLR(opt_d, decay)])


class UNetAttacker(_AttackerBase):
    """U-Net blind attacker, content loss only, Adam with linear decay."""

    def __init__(
        self,
        vgg_weights: str | None = None,
        lr: float = 1e-3,
        min_lr: float = 1e-6,
        base_channels: int = 32,
        depth: int = 4,
        decay_epochs: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.generator = UNet(base_channels, depth)
        self._setup_content(vgg_weights)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        cap, ori = batch
        loss = content_loss(self.generator(cap), ori, self._features())
        self.log("train_content", loss, on_step=True, on_epoch=True, batch_size=len(cap))
        return loss

    def configure_optimizers(self):
        epochs = self.hparams.decay_epochs or (self.trainer.max_epochs if self._trainer else 1)
        opt = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, _linear_decay(self.hparams.lr, self.hparams.min_lr, epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


ATTACKERS: dict[str, type[_AttackerBase]] = {"deblurgan": DeblurGANAttacker,
                                             "unet": UNetAttacker}


def _loggers(out_dir: Path) -> list:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    # New version folder per (resumed) run: earlier logs are kept.
    loggers: list = [CSVLogger(out_dir, name="csv")]
    try:
        loggers.append(TensorBoardLogger(out_dir, name="tensorboard"))
    except ModuleNotFoundError as err:  # tensorboard not installed: CSV only
        log.warning("TensorBoard logging off (%s); install tensorboard", err)
    return loggers


def train_attacker(
    kind: str,
    train_captures: np.ndarray,
    train_originals: np.ndarray,
    out_dir: str | Path,
    epochs: int = 5,
    batch_size: int = 8,
    seed: int = 0,
    accelerator: str = "cpu",
    resume: bool = True,
    val_fraction: float = 0.1,
    max_steps: int = -1,
    **hparams: Any,
) -> tuple[_AttackerBase, dict[str, Any]]:
    """Fit a learned attacker on (N, H, W, 3) uint8 pairs.

    Args:
        kind: "deblurgan" or "unet".
        out_dir: logs (``csv/``, ``tensorboard/``) and ``checkpoints/last.ckpt``; an existing
            ``last.ckpt`` is resumed when ``resume``.
        accelerator: Lightning accelerator ("cpu", "gpu", "auto").
        val_fraction: share of the pairs held out for validation logs (none below 10 pairs).
        hparams: forwarded to the attacker's constructor (e.g. ``backbone_weights``).

    Returns:
        (trained module in eval mode, info dict: checkpoint, logs, losses, notes, seconds).
    """
    if kind not in ATTACKERS:
        raise ValueError(f"unknown learned attacker {kind!r}: choose one of {list(ATTACKERS)}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    dataset = PairDataset(train_captures, train_originals)
    out_dir = Path(out_dir)
    L.seed_everything(seed, workers=True, verbose=False)
    n = len(dataset)
    n_val = round(val_fraction * n) if n >= 10 else 0
    order = np.random.default_rng(seed).permutation(n)
    train_ds = torch.utils.data.Subset(dataset, sorted(order[n_val:].tolist()))
    val_ds = torch.utils.data.Subset(dataset, sorted(order[:n_val].tolist())) if n_val else None
    gen = torch.Generator().manual_seed(seed)
    train_dl = DataLoader(train_ds, batch_size=min(batch_size, len(train_ds)), shuffle=True,
                          generator=gen, drop_last=len(train_ds) > batch_size)
    val_dl = DataLoader(val_ds, batch_size=batch_size) if val_ds is not None else None
    model = ATTACKERS[kind](**hparams)
    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt_dir = out_dir / "checkpoints"
    trainer = L.Trainer(
        accelerator=accelerator, devices=1, max_epochs=epochs, max_steps=max_steps,
        logger=_loggers(out_dir),
        callbacks=[ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                                   enable_version_counter=False)],
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(10, len(train_dl))),
    )
    last = ckpt_dir / "last.ckpt"
    resume_from = str(last) if resume and last.is_file() else None
    if resume_from:
        log.info("resuming %s attacker from %s", kind, resume_from)
    start = time.perf_counter()
    trainer.fit(model, train_dl, val_dl, ckpt_path=resume_from)
    seconds = time.perf_counter() - start
    model.eval()
    export = out_dir / "generator.pt"
    torch.save({"kind": kind, "hparams": dict(model.hparams),
                "state_dict": model.generator.state_dict()}, export)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    info = {
        "kind": kind, "checkpoint": str(last), "generator": str(export), "log_dir": str(out_dir),
        "epochs": int(trainer.current_epoch), "steps": int(trainer.global_step),
        "train_pairs": len(train_ds), "val_pairs": n_val, "seconds": seconds,
        "content_loss": model.content_note,
        "backbone": getattr(model.generator, "weights_note", "n/a"), "metrics": metrics,
        "resumed_from": resume_from,
    }
    return model, info


def load_attacker(path: str | Path, map_location: str = "cpu") -> torch.nn.Module:
    """Reload a trained attacker's generator from a Lightning ``.ckpt`` or a ``generator.pt``
    (eval mode). Pretrained-weight options are not re-applied: the saved weights are used."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"attacker checkpoint {path} does not exist")
    if path.suffix == ".ckpt":
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
        hp = dict(ckpt.get("hyper_parameters", {}))
        kind = "deblurgan" if "adv_lambda" in hp else "unet"
        hp.pop("backbone_weights", None)
        hp["vgg_weights"] = None
        model = ATTACKERS[kind](**hp)
        model.load_state_dict(ckpt["state_dict"])
        return model.generator.eval()
    blob = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(blob, dict) or "kind" not in blob or blob["kind"] not in ATTACKERS:
        raise ValueError(f"{path} is not an attacker export (expected a dict with 'kind' in "
                         f"{list(ATTACKERS)} and 'state_dict'); pass a .ckpt or generator.pt")
    hp = dict(blob["hparams"])
    hp.pop("backbone_weights", None)
    hp["vgg_weights"] = None
    model = ATTACKERS[blob["kind"]](**hp)
    model.generator.load_state_dict(blob["state_dict"])
    return model.generator.eval()


@torch.no_grad()
def reconstruct(
    generator: torch.nn.Module, captures: torch.Tensor, batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Run a generator over (N, 3, H, W) captures in [0, 1]; returns (N, 3, H, W) on the CPU."""
    generator = generator.to(device).eval()
    out = [generator(captures[s:s + batch_size].to(device)).clamp(0, 1).cpu()
           for s in range(0, len(captures), batch_size)]
    return torch.cat(out)

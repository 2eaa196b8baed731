"""Training and reloading the learned attackers (``attacks.learned``).

:func:`train_attacker` fits any of them on a training part of the pairs, validates on a
held-out part every epoch, keeps the best-validation-SSIM checkpoint (``best.ckpt``, the weights
it returns) beside a resumable ``last.ckpt``, and says whether the attacker converged: its best
validation SSIM must beat the identity ("no attack") on the same validation pairs.
:func:`load_attacker` reloads a Lightning checkpoint or an exported ``generator.pt``;
:func:`reconstruct` runs a generator over captures.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from .attackers import ATTACKERS, AttackerSpec, get_attacker
from .learned import PairDataset, _AttackerBase
from .metrics import ssim

__all__ = ["load_attacker", "reconstruct", "train_attacker"]

log = logging.getLogger("attacks.learned")  # the attackers' log lines keep their name


def _loggers(out_dir: Path) -> list:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    # New version folder per (resumed) run: earlier logs are kept.
    loggers: list = [CSVLogger(out_dir, name="csv")]
    try:
        loggers.append(TensorBoardLogger(out_dir, name="tensorboard"))
    except ModuleNotFoundError as err:  # tensorboard not installed: CSV only
        log.warning("TensorBoard logging off (%s); install tensorboard", err)
    return loggers


class _ValHistory(L.Callback):
    """Per-epoch validation SSIM (the attacker's learning curve) and wall seconds per epoch
    (its training and validation, taken when validation ends: before the checkpoint of that
    epoch is written, so it is in it); saved in the checkpoints, so a resumed run keeps the
    epochs before the interruption."""

    def __init__(self) -> None:
        self.history: list[float] = []
        self.epoch_seconds: list[float] = []
        self._epoch_start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and "val_ssim" in trainer.callback_metrics:
            self.history.append(float(trainer.callback_metrics["val_ssim"]))
            self._lap()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._lap()  # an epoch without validation (fewer than 10 pairs)

    def _lap(self) -> None:
        if self._epoch_start is not None:
            self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
            self._epoch_start = None

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "epoch_seconds": list(self.epoch_seconds)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [float(v) for v in state_dict.get("history", [])]
        self.epoch_seconds = [float(v) for v in state_dict.get("epoch_seconds", [])]


@torch.no_grad()
def _mean_ssim(generator: torch.nn.Module | None, loader: DataLoader) -> float:
    """Mean SSIM of ``generator`` (None: the identity, i.e. the captures) over a pair loader;
    the generator runs in eval mode and gets its mode back."""
    mode = generator.training if generator is not None else False
    if generator is not None:
        generator.eval()
    values = []
    for cap, ori in loader:
        rec = cap if generator is None else generator(cap).clamp(0, 1)
        values.append(ssim(rec, ori))
    if generator is not None:
        generator.train(mode)
    return float(torch.cat(values).mean())


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
    patience: int | None = None,
    **hparams: Any,
) -> tuple[_AttackerBase, dict[str, Any]]:
    """Fit a learned attacker on (N, H, W, 3) uint8 pairs and keep its best validation epoch.
    (Long by its documented options and the info record; the steps are the helpers below.)

    Args:
        kind: a name of ``attacks.attackers.ATTACKERS`` ("deblurgan", "unet" or
            "wiener_unet"; a non-blind one needs ``psf=`` and ideally ``k=``).
        out_dir: logs (``csv/``, ``tensorboard/``), ``checkpoints/best.ckpt`` (best validation
            SSIM) and ``checkpoints/last.ckpt``; an existing ``last.ckpt`` is resumed when
            ``resume``.
        accelerator: Lightning accelerator ("cpu", "gpu", "auto").
        val_fraction: share of the pairs held out for validation and checkpoint selection
            (at least 1 pair once there are 10; below 10 pairs nothing is held out, the last
            epoch is kept and convergence is not judged).
        patience: early stopping: end training once validation SSIM has not improved (by
            1e-4 or more) for this many epochs (``epochs`` is then the cap); None trains every
            epoch.
        hparams: forwarded to the attacker's constructor (e.g. ``backbone_weights``).

    Returns:
        (trained module in eval mode holding the best-validation weights, info dict:
        checkpoint, logs, losses, notes, seconds, ``val_identity_ssim`` (captures as they are),
        ``val_start_ssim`` (the untrained attacker: identity, or Wiener for wiener_unet),
        ``val_best_ssim``, ``best_epoch``, ``val_history`` (SSIM per epoch of this run),
        ``val_last_ssim``, ``epoch_seconds`` (wall seconds of each epoch, its validation
        included, its checkpoint writes not), ``converged``:
        True / False (best ≤ identity: "did not converge") / None (no validation pairs),
        and ``stopped``: "plateau" (early stopping ended it) or "epoch cap").
    """
    spec = get_attacker(kind)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if patience is not None and patience < 1:
        raise ValueError(
            f"patience must be >= 1 epoch (or None: no early stopping), got {patience}"
        )
    out_dir = Path(out_dir)
    L.seed_everything(seed, workers=True, verbose=False)
    train_ds, train_dl, val_dl = _loaders(
        PairDataset(train_captures, train_originals), val_fraction, batch_size, seed
    )
    model = spec.lightning_class()(**hparams)
    model.kind = kind  # the registry's name goes into its checkpoints (attacker_kind)
    trainer, checkpoint, history = _trainer(
        out_dir, val_dl is not None, accelerator, epochs, max_steps, len(train_dl), patience
    )
    last = out_dir / "checkpoints" / "last.ckpt"
    resume_from = str(last) if resume and last.is_file() else None
    if resume_from:
        log.info("resuming %s attacker from %s", kind, resume_from)
    else:
        model.prepare(torch.stack([train_ds[i][0] for i in range(min(64, len(train_ds)))]))
    val_identity = val_start = None
    if val_dl is not None:
        val_identity = _mean_ssim(None, val_dl)
        if resume_from is None:
            val_start = _mean_ssim(model.generator, val_dl)
    start = time.perf_counter()
    trainer.fit(model, train_dl, val_dl, ckpt_path=resume_from)
    if trainer.interrupted:  # Lightning caught Ctrl-C: the run is not finished, say so upward
        raise KeyboardInterrupt(f"{kind} attacker interrupted; rerun to resume from {last}")
    seconds = time.perf_counter() - start
    chosen, best_epoch = _keep_best(model, checkpoint, last, trainer)
    export = out_dir / "generator.pt"
    torch.save(
        {"kind": kind, "hparams": dict(model.hparams), "state_dict": model.generator.state_dict()},
        export,
    )
    val_best = (
        float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None
    )
    converged = None if val_best is None or val_identity is None else val_best > val_identity
    if converged is False:
        log.warning(
            "%s attacker did not converge: best validation SSIM %.4f <= identity %.4f",
            kind,
            val_best,
            val_identity,
        )
    info = {
        "kind": kind,
        "checkpoint": str(chosen),
        "last_checkpoint": str(last),
        "generator": str(export),
        "log_dir": str(out_dir),
        "epochs": int(trainer.current_epoch),
        "steps": int(trainer.global_step),
        "train_pairs": len(train_ds),
        "val_pairs": len(val_dl.dataset) if val_dl else 0,
        "seconds": seconds,
        "content_loss": model.content_note,
        "backbone": getattr(model.generator, "weights_note", "n/a"),
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        "resumed_from": resume_from,
        "best_epoch": best_epoch,
        "val_identity_ssim": val_identity,
        "val_start_ssim": val_start,
        "val_best_ssim": val_best,
        "val_history": history.history,
        "epoch_seconds": history.epoch_seconds,
        "converged": converged,
        "val_last_ssim": history.history[-1] if history.history else None,
        "patience": patience,
        "stopped": _stop_reason(trainer, epochs),
    }
    if spec.needs_psf:  # the Wiener stage's learned K
        info["k_final"] = model.generator.k
    return model, info


def _loaders(
    dataset: PairDataset, val_fraction: float, batch_size: int, seed: int
) -> tuple[torch.utils.data.Subset, DataLoader, DataLoader | None]:
    """Seeded train / validation split (nothing held out below 10 pairs) and their loaders."""
    n = len(dataset)
    n_val = max(1, round(val_fraction * n)) if n >= 10 and val_fraction > 0 else 0
    order = np.random.default_rng(seed).permutation(n)
    train_ds = torch.utils.data.Subset(dataset, sorted(order[n_val:].tolist()))
    val_ds = torch.utils.data.Subset(dataset, sorted(order[:n_val].tolist())) if n_val else None
    gen = torch.Generator().manual_seed(seed)
    train_dl = DataLoader(
        train_ds,
        batch_size=min(batch_size, len(train_ds)),
        shuffle=True,
        generator=gen,
        drop_last=len(train_ds) > batch_size,
    )
    val_dl = DataLoader(val_ds, batch_size=batch_size) if val_ds is not None else None
    return train_ds, train_dl, val_dl


def _stop_reason(trainer: L.Trainer, epochs: int) -> str:
    """ "plateau" when early stopping ended the run before ``epochs``, else "epoch cap"."""
    from lightning.pytorch.callbacks import EarlyStopping

    stopper = next((c for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)
    if stopper is not None and stopper.wait_count >= stopper.patience:
        return "plateau"
    return "epoch cap"


def last_checkpoint(dirpath: str | Path) -> L.Callback:
    """A checkpoint callback writing ``dirpath/last.ckpt`` after every epoch.

    ``ModelCheckpoint(save_last=True)`` beside a monitored best no longer does: since Lightning
    2.6 it refreshes ``last.ckpt`` only when a best checkpoint is saved in the same step, so a
    run killed after epochs without a gain would resume from its last gain and redo them (and
    ``--ckpt_path last`` would restart there). Without a monitor, ``save_top_k=1`` keeps the
    newest epoch under one name."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    return ModelCheckpoint(
        dirpath=dirpath, filename="last", monitor=None, save_top_k=1, enable_version_counter=False
    )


def _trainer(
    out_dir: Path,
    validate: bool,
    accelerator: str,
    epochs: int,
    max_steps: int,
    train_batches: int,
    patience: int | None = None,
) -> tuple[L.Trainer, Any, _ValHistory]:
    """Lightning trainer keeping ``best.ckpt`` (best val_ssim, when validating) and
    ``last.ckpt``, with the validation-history callback and, given ``patience``, early stopping
    on val_ssim (its state is in the checkpoints: a resumed run keeps counting)."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    ckpt_dir = out_dir / "checkpoints"
    last = last_checkpoint(ckpt_dir)
    checkpoint = (
        ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor="val_ssim",
            mode="max",
            save_top_k=1,
            enable_version_counter=False,
        )
        if validate
        else last
    )
    history = _ValHistory()
    callbacks: list[L.Callback] = [checkpoint, history] if validate else [history]
    callbacks.append(last)
    if patience is not None and validate:
        # a gain under 1e-4 SSIM is noise, not learning: it does not reset the count
        callbacks.append(
            EarlyStopping(monitor="val_ssim", mode="max", patience=patience, min_delta=1e-4)
        )
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        max_epochs=epochs,
        max_steps=max_steps,
        logger=_loggers(out_dir),
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(10, train_batches)),
    )
    return trainer, checkpoint, history


def _keep_best(
    model: _AttackerBase, checkpoint: Any, last: Path, trainer: L.Trainer
) -> tuple[Path, int]:
    """Load the best-validation weights into ``model`` (eval mode); returns (checkpoint used,
    its 1-based epoch)."""
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    chosen = last
    if best is not None and best.is_file():
        state = torch.load(best, map_location=model.device, weights_only=True)
        model.load_state_dict(state["state_dict"])
        chosen = best
        best_epoch = int(state["epoch"]) + 1
    else:
        best_epoch = int(trainer.current_epoch)
    model.eval()
    return chosen, best_epoch


def load_attacker(path: str | Path, map_location: str = "cpu") -> torch.nn.Module:
    """Reload a trained attacker's generator from a Lightning ``.ckpt`` or a ``generator.pt``
    (eval mode). Pretrained-weight options are not re-applied: the saved weights are used."""
    from optics.checkpoint_file import checkpoint_kind, describe_checkpoint_kind, read_checkpoint

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"attacker checkpoint {path} is a directory; pass best.ckpt or generator.pt"
        )
    if not path.is_file():
        raise FileNotFoundError(f"attacker checkpoint {path} does not exist")
    if path.suffix == ".ckpt":
        ckpt = read_checkpoint(path, map_location)  # empty / truncated files named
        found = checkpoint_kind(ckpt)
        if found != "attacker":
            raise ValueError(
                f"{path} is {describe_checkpoint_kind(found)}, not an attacker; "
                "pass the attacker's checkpoints/best.ckpt or generator.pt"
            )
        hp = dict(ckpt.get("hyper_parameters", {}))
        # checkpoints written before attacker_kind was saved: DeblurGAN's has adv_lambda
        kind = ckpt.get("attacker_kind") or ("deblurgan" if "adv_lambda" in hp else "unet")
        model = _rebuild(get_attacker(kind), hp)
        model.load_state_dict(ckpt["state_dict"])
        return model.generator.eval()
    if path.stat().st_size == 0:
        raise ValueError(f"attacker checkpoint {path} is empty (0 bytes); retrain the attacker")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # zip/pickle errors of truncated or foreign files
        raise ValueError(
            f"cannot read attacker checkpoint {path} ({type(err).__name__}: {err}); "
            "the file is truncated or not an attacker export"
        ) from err
    if not isinstance(blob, dict) or "kind" not in blob or blob["kind"] not in ATTACKERS:
        what = (
            describe_checkpoint_kind(checkpoint_kind(blob))
            if isinstance(blob, dict)
            else ("not a privcam checkpoint")
        )
        raise ValueError(
            f"{path} is {what}, not an attacker export (expected a dict with "
            f"'kind' in {list(ATTACKERS)} and 'state_dict'); pass a .ckpt or "
            "generator.pt"
        )
    model = _rebuild(ATTACKERS[blob["kind"]], dict(blob["hparams"]))
    model.generator.load_state_dict(blob["state_dict"])
    return model.generator.eval()


def _rebuild(spec: AttackerSpec, hp: dict[str, Any]) -> _AttackerBase:
    """The attacker of saved hyper-parameters, without its pretrained weights (backbone,
    VGG19): the saved state replaces them."""
    if spec.weights_option:
        hp.pop(spec.weights_option, None)
    hp["vgg_weights"] = None
    return spec.lightning_class()(**hp)


@torch.no_grad()
def reconstruct(
    generator: torch.nn.Module,
    captures: torch.Tensor,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Run a generator over (N, 3, H, W) captures in [0, 1]; returns (N, 3, H, W) on the CPU."""
    generator = generator.to(device).eval()
    out = [
        generator(captures[s : s + batch_size].to(device)).clamp(0, 1).cpu()
        for s in range(0, len(captures), batch_size)
    ]
    return torch.cat(out)

"""The in-loop adversary of min–max lens training: an attacker network trained on the current
lens's (capture, original) pairs, alternating with the lens + captioner step, whose success
the lens is trained to lower.

    attacker step:  θ ← θ − lr_θ ∇_θ content(A_θ(X̂), X)           (X̂ = capture, detached)
    lens step:      the training loss + w_adversary · SSIM(A_θ(X̂), X)  (θ fixed)

:class:`InLoopAdversary` owns the attacker (a U-Net, or Wiener + U-Net refiner that knows the
current PSF: any learned attacker of ``attacks.attackers.ATTACKERS`` with an ``in_loop``
builder, :func:`adversary_kinds`), its Adam optimiser and step counter. It is deliberately
*not* an ``nn.Module`` child of the LightningModule: DDP would otherwise register the attacker's
parameters for the lens step's gradient synchronisation (they get no gradient there, and the
attacker has its own optimiser). Instead it keeps every rank's attacker identical itself (rank
0's initial weights broadcast on the first step, gradients averaged over ranks before each
update), and its :meth:`~InLoopAdversary.state_dict` goes into the training checkpoint.

Pure functions: :func:`build_attacker`, :func:`adversary_similarity`, :func:`pretrain_plateaued`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .attackers import ATTACKERS, adversary_kinds
from .losses import content_loss
from .metrics import ssim

if TYPE_CHECKING:  # the optics package is imported where a camera is read
    from optics import Camera

__all__ = [
    "InLoopAdversary",
    "adversary_kinds",
    "adversary_similarity",
    "attack_with",
    "build_attacker",
    "camera_and_in_loop_attacker",
    "load_in_loop_attacker",
    "pretrain_plateaued",
]

# pre-training's plateau: an epoch that gains less SSIM than this over the best gains nothing (a
# fifth of the 0.01 at which the saturation protocol calls a doubling of pairs a gain)
PRETRAIN_MIN_DELTA = 2e-3


def build_attacker(
    kind: str,
    base_channels: int = 16,
    depth: int = 3,
    response: str = "srgb",
    gamma: float = 2.2,
    linearize: bool = True,
    k: float = 1e-2,
    seed: int = 0,
) -> nn.Module:
    """The in-loop attacker network of learned attacker ``kind`` (its ``AttackerSpec.in_loop``
    builder), e.g. identity (U-Net) or Wiener (Wiener + U-Net) at init.

    ``seed`` fixes the initial weights (the same on every DDP rank). A non-blind attacker
    (e.g. Wiener + U-Net) is called as ``net(captures, psf)`` with the lens's current
    (C, K, K) PSF: the network's ``needs_psf`` attribute, copied from its spec, says so.
    """
    kinds = adversary_kinds()
    if kind not in kinds or kind == "none":
        raise ValueError(f"model.adversary must be one of {list(kinds)}, got {kind!r}")
    spec = ATTACKERS[kind]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = spec.in_loop(
            base_channels=base_channels,
            depth=depth,
            response=response,
            gamma=gamma,
            linearize=linearize,
            k=k,
        )
    net.needs_psf = spec.needs_psf
    return net


def _inputs(
    net: nn.Module, captures: torch.Tensor, psf: torch.Tensor | None
) -> tuple[torch.Tensor, ...]:
    """The attacker's call arguments: the captures, and the PSF for a non-blind one."""
    return (captures, psf) if getattr(net, "needs_psf", False) else (captures,)


def _call(net: nn.Module, captures: torch.Tensor, psf: torch.Tensor | None) -> torch.Tensor:
    return net(*_inputs(net, captures, psf))


def adversary_similarity(
    net: nn.Module, captures: torch.Tensor, originals: torch.Tensor, psf: torch.Tensor | None
) -> torch.Tensor:
    """Per-image SSIM (B,) of the attacker's reconstruction, differentiable in the captures and
    the PSF but not in the attacker's weights (they are used detached: the lens step must not
    train, or leave gradients on, the attacker)."""
    params = {name: p.detach() for name, p in net.named_parameters()}
    rec = torch.func.functional_call(net, params, _inputs(net, captures, psf))
    return ssim(rec.clamp(0, 1), originals)


def pretrain_plateaued(scores: list[float], patience: int, min_delta: float) -> bool:
    """Whether the last ``patience`` of the per-epoch ``scores`` (higher is better) all failed
    to beat the best before them by more than ``min_delta`` (as Lightning's EarlyStopping)."""
    best, stale = -math.inf, 0
    for score in scores:
        if score > best + min_delta:
            best, stale = score, 0
        else:
            stale += 1
    return stale >= patience


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class InLoopAdversary:
    """Attacker network + optimiser + schedule for min–max lens training (see module doc).

    Args:
        kind: an in-loop attacker of :func:`adversary_kinds` ("unet" or "wiener_unet").
        lr: the attacker's Adam learning rate.
        warmup_steps: lens steps during which the attacker trains but the lens term is off.
        steps_per_lens_step: attacker updates per lens update (the update ratio, >= 1).
        base_channels, depth: the attacker U-Net's size.
        response, gamma, linearize: the camera response (Wiener + U-Net undoes it).
        k: the Wiener stage's initial noise-to-signal ratio.
        seed: initial weights.

    :meth:`pretrain` trains the attacker alone on the frozen starting lens first (to its plateau),
    so the min–max phase starts against a converged attacker rather than a fresh one.
    """

    def __init__(
        self,
        kind: str,
        lr: float = 1e-3,
        warmup_steps: int = 0,
        steps_per_lens_step: int = 1,
        base_channels: int = 16,
        depth: int = 3,
        response: str = "srgb",
        gamma: float = 2.2,
        linearize: bool = True,
        k: float = 1e-2,
        seed: int = 0,
    ) -> None:
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"model.adversary_lr must be a finite number > 0, got {lr!r}")
        if int(warmup_steps) < 0:
            raise ValueError(f"model.adversary_warmup_steps must be >= 0, got {warmup_steps}")
        if int(steps_per_lens_step) < 1:
            raise ValueError(
                f"model.adversary_steps (attacker updates per lens update) must be >= 1, got "
                f"{steps_per_lens_step}"
            )
        self.kind = kind
        self.net = build_attacker(kind, base_channels, depth, response, gamma, linearize, k, seed)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.warmup_steps = int(warmup_steps)
        self.steps_per_lens_step = int(steps_per_lens_step)
        self.updates = 0
        self.pretrain_history: list[dict[str, float]] = []
        self.pretrain_done = False
        self._synced = False

    # ------------------------------------------------------------------ devices and ranks

    def to(self, device: torch.device | str) -> InLoopAdversary:
        """Move the attacker and its optimiser state to ``device``."""
        device = torch.device(device)
        first = next(self.net.parameters())
        if first.device != device:
            self.net.to(device)
            for state in self.optimizer.state.values():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor) and key != "step":
                        state[key] = value.to(device)
        return self

    def _sync_initial_weights(self) -> None:
        if self._synced:
            return
        self._synced = True
        if _distributed():
            with torch.no_grad():
                for tensor in [*self.net.parameters(), *self.net.buffers()]:
                    torch.distributed.broadcast(tensor, src=0)

    # ------------------------------------------------------------------ the two steps

    def active(self, lens_step: int) -> bool:
        """Whether the lens term is on at this lens (global) step (after the warm-up)."""
        return lens_step >= self.warmup_steps

    def leakage(
        self,
        captures: torch.Tensor,
        originals: torch.Tensor,
        psf: torch.Tensor | None,
    ) -> torch.Tensor:
        """The lens term: mean SSIM of the attacker's reconstruction of (B, 3, H, W) captures
        (scalar, float32, gradient to the captures and PSF only)."""
        self.to(captures.device)
        with torch.autocast(device_type=captures.device.type, enabled=False):
            return adversary_similarity(
                self.net, captures.float(), originals.float(), None if psf is None else psf.float()
            ).mean()

    def train_step(
        self, captures: torch.Tensor, originals: torch.Tensor, psf: torch.Tensor | None
    ) -> float:
        """``steps_per_lens_step`` attacker updates on this batch (inputs detached); under DDP
        the gradients are averaged over ranks, so every rank keeps the same attacker.
        Returns the last loss."""
        self.to(captures.device)
        self._sync_initial_weights()
        cap, ori = captures.detach().float(), originals.detach().float()
        psf = None if psf is None else psf.detach().float()
        loss = torch.zeros(())
        for _ in range(self.steps_per_lens_step):
            loss, _ = self._update(cap, ori, psf)
        return float(loss)

    def _update(
        self, cap: torch.Tensor, ori: torch.Tensor, psf: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One attacker update on detached float32 pairs, on the content loss L1 + (1 − SSIM) of
        its reconstruction; returns (the loss, the reconstruction (B, 3, H, W) before the
        update), both detached."""
        self.net.train()
        with torch.enable_grad(), torch.autocast(device_type=cap.device.type, enabled=False):
            rec = _call(self.net, cap, psf)
            loss = content_loss(rec, ori)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        if _distributed():
            world = torch.distributed.get_world_size()
            for p in self.net.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad.div_(world)
        self.optimizer.step()
        self.updates += 1
        return loss.detach(), rec.detach()

    # ------------------------------------------------------------------ pre-training

    def pretrain(
        self,
        epoch_batches: Callable[
            [], Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]
        ],
        max_epochs: int,
        patience: int = 2,
        min_delta: float = PRETRAIN_MIN_DELTA,
        after_epoch: Callable[[dict[str, float]], None] | None = None,
    ) -> list[dict[str, float]]:
        """Train the attacker alone on a frozen lens until its SSIM plateaus, before min–max.

        Each epoch runs one update per (captures, originals, psf) batch of ``epoch_batches()``
        (fresh captures each epoch) and scores the mean SSIM of the reconstructions made
        *before* each update: every batch is unseen for an epoch, so the score is a held-out
        one (progressive validation) at no extra forward pass. Stops once ``patience`` epochs
        in a row gain less than ``min_delta`` over the best (:func:`pretrain_plateaued`) or
        after ``max_epochs``; continues :attr:`pretrain_history` (a resumed pre-training).
        Under DDP the score is averaged over ranks, so every rank stops at the same epoch.

        Returns the history: per epoch ``{"epoch", "ssim", "loss", "images", "seconds"}``;
        ``after_epoch`` is called with each new row (log it, save a checkpoint)."""
        while len(self.pretrain_history) < max_epochs and not pretrain_plateaued(
            [row["ssim"] for row in self.pretrain_history], patience, min_delta
        ):
            start = time.perf_counter()
            total = torch.zeros(3, dtype=torch.float64)  # SSIM sum, loss sum, images
            for captures, originals, psf in epoch_batches():
                self.to(captures.device)
                self._sync_initial_weights()
                cap, ori = captures.detach().float(), originals.detach().float()
                loss, rec = self._update(cap, ori, None if psf is None else psf.detach().float())
                n = len(cap)
                total += torch.tensor(
                    [float(ssim(rec.clamp(0, 1), ori).sum()), float(loss) * n, n],
                    dtype=torch.float64,
                )
            if _distributed():
                total = total.to(next(self.net.parameters()).device)
                torch.distributed.all_reduce(total)
                total = total.cpu()
            if total[2] == 0:
                raise ValueError(
                    "model.adversary_pretrain_epochs: the training data loader gave no batch"
                )
            row = {
                "epoch": len(self.pretrain_history),
                "ssim": float(total[0] / total[2]),
                "loss": float(total[1] / total[2]),
                "images": int(total[2]),
                "seconds": time.perf_counter() - start,
            }
            self.pretrain_history.append(row)
            if after_epoch is not None:
                after_epoch(row)
        self.pretrain_done = True
        return self.pretrain_history

    @torch.no_grad()
    def ssim_per_image(
        self, captures: torch.Tensor, originals: torch.Tensor, psf: torch.Tensor | None
    ) -> torch.Tensor:
        """(B,) SSIM of the attacker's reconstructions (validation), on the CPU."""
        self.to(captures.device)
        with torch.autocast(device_type=captures.device.type, enabled=False):
            return adversary_similarity(
                self.net, captures.float(), originals.float(), None if psf is None else psf.float()
            ).cpu()

    def max_weight_spread(self) -> float:
        """Largest difference of any attacker weight across DDP ranks (0 when not distributed;
        a collective: every rank must call it)."""
        if not _distributed():
            return 0.0
        flat = torch.cat([p.detach().flatten() for p in self.net.parameters()])
        world = torch.distributed.get_world_size()
        gathered = [torch.empty_like(flat) for _ in range(world)]
        torch.distributed.all_gather(gathered, flat)
        return max(float((g - gathered[0]).abs().max()) for g in gathered)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Attacker weights, optimiser state and update count (for the training checkpoint)."""
        return {
            "kind": self.kind,
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "pretrain": {"history": self.pretrain_history, "done": self.pretrain_done},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(
                f"the checkpoint's in-loop adversary is {state.get('kind')!r} but "
                f"model.adversary is {self.kind!r}; resume with the same model.adversary"
            )
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state.get("updates", 0))
        pretrain = state.get("pretrain") or {}
        self.pretrain_history = [dict(row) for row in pretrain.get("history", [])]
        self.pretrain_done = bool(pretrain.get("done", False))
        self._synced = True  # every rank loads the same checkpoint


def load_in_loop_attacker(checkpoint: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]] | None:
    """The in-loop attacker saved in a training checkpoint (already read with ``torch.load``),
    for judging it beside the fresh attackers; None when the lens was not trained against one.

    Returns:
        the attacker network (eval mode; call it as ``attack_with(net, captures, psf)``) and
        what it was: kind, w_adversary, its updates, the batch size and so the (capture,
        original) pairs it was trained on (updates x batch).
    """
    hp = checkpoint.get("hyper_parameters") or {}
    kind = hp.get("adversary", "none")
    if kind in (None, "none"):
        return None
    state = checkpoint.get("adversary")
    if not state:
        raise ValueError(
            f"the checkpoint says model.adversary {kind!r} but holds no attacker "
            "state: it was written before min–max training saved it; retrain"
        )
    camera = hp.get("camera") or {}
    net = build_attacker(
        kind,
        int(hp.get("adversary_channels", 16)),
        int(hp.get("adversary_depth", 3)),
        camera.get("response", "srgb"),
        float(camera.get("gamma", 2.2)),
        bool(camera.get("linearize_input", True)),
    )
    net.load_state_dict(state["net"])
    batch = int((checkpoint.get("datamodule_hyper_parameters") or {}).get("batch_size", 0))
    updates = int(state.get("updates", 0))
    return net.eval(), {
        "kind": kind,
        "w_adversary": float(hp.get("w_adversary", 0.0)),
        "updates": updates,
        "batch_size": batch,
        "pairs_seen": updates * batch,
        "lens_steps": int(checkpoint.get("global_step", 0)),
    }


def camera_and_in_loop_attacker(
    ckpt: str | Path, checkpoint: Mapping[str, Any] | None = None
) -> tuple[Camera, tuple[nn.Module, dict[str, Any]] | None]:
    """The camera of a checkpoint and its in-loop attacker (:func:`load_in_loop_attacker`;
    None for a lens trained without one or a camera-only file), from one read of the file
    (training checkpoints are ~170 MB). ``checkpoint``: the file already read with
    ``optics.checkpoint_file.read_checkpoint``."""
    from optics.camera import camera_from_checkpoint
    from optics.checkpoint_file import read_checkpoint

    raw = read_checkpoint(ckpt) if checkpoint is None else checkpoint
    return camera_from_checkpoint(raw, ckpt), load_in_loop_attacker(raw)


@torch.no_grad()
def attack_with(
    net: nn.Module, captures: torch.Tensor, psf: torch.Tensor | None, batch_size: int = 32
) -> torch.Tensor:
    """Reconstructions ``(N, 3, H, W)`` in [0, 1] of captures by an in-loop attacker (batched;
    the Wiener + U-Net attacker gets the lens's PSF ``(C, K, K)``)."""
    out = [
        _call(net, captures[i : i + batch_size], psf).clamp(0, 1)
        for i in range(0, len(captures), batch_size)
    ]
    return torch.cat(out) if out else captures.new_zeros((0, *captures.shape[1:]))

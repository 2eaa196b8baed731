"""Named attacks: each reads the shared :class:`AttackRun` (pairs, PSF, response, settings)
and adds its reconstructions, labels, K sweeps and timings to it.

:func:`attack_functions` (also ``REGISTRY``) maps every ``--attack`` name to its function, in
report order: the non-blind attacks here, then one per learned attacker of
``attacks.attackers.ATTACKERS`` (trained with ``attacks.training``), read when called.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import nonblind as NB
from .attackers import ATTACKERS
from .pairs import PairSet

__all__ = [
    "REGISTRY",  # noqa: F822 (module __getattr__: read from the registry when asked for)
    "AttackRun",
    "attack_functions",
    "attack_names",
    "learned_options",
]


@dataclass
class AttackRun:
    """Inputs every attack reads and the results they add (one run of ``run_attacks``).

    Tensors: captures / originals (N, 3, H, W) in [0, 1] on ``device``; ``psf`` (C, K, K).
    """

    pairs: PairSet
    psf: torch.Tensor
    response: NB.Response
    cap_train: torch.Tensor
    ori_train: torch.Tensor
    cap_test: torch.Tensor
    ori_test: torch.Tensor
    k_sel: np.ndarray  # attacker-train images of the K sweeps
    ref_idx: np.ndarray  # test images of the (slow) scikit-image attacks
    out: Path
    seed: int
    k_metric: str
    device: str
    epochs: int
    batch_size: int
    vgg_weights: str | None
    options: dict[str, dict[str, Any]]  # learned attackers' constructor options
    recons: dict[str, torch.Tensor] = field(default_factory=dict)
    subsets: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    k_info: dict[str, Any] = field(default_factory=dict)
    learned: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def fit(self, kind: str, sel: np.ndarray, folder: Path) -> tuple[torch.nn.Module, dict]:
        """Train learned attacker ``kind`` on attacker-train pairs ``sel`` for ``epochs``."""
        train = self.pairs.train[sel]
        return self.fit_arrays(
            kind, self.pairs.captures[train], self.pairs.originals[train], folder, self.epochs
        )

    def fit_arrays(
        self,
        kind: str,
        captures: np.ndarray,
        originals: np.ndarray,
        folder: Path,
        epochs: int,
        patience: int | None = None,
    ) -> tuple[torch.nn.Module, dict]:
        """Train learned attacker ``kind`` on (N, H, W, 3) uint8 pairs with this run's options
        (``patience``: early stopping, ``epochs`` then the cap)."""
        from .training import train_attacker

        extra = dict(self.options[kind])
        accelerator = "gpu" if str(self.device).startswith("cuda") else "cpu"
        return train_attacker(
            kind,
            captures,
            originals,
            folder,
            epochs=epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            accelerator=accelerator,
            patience=patience,
            vgg_weights=extra.pop("vgg_weights", self.vgg_weights),
            **extra,
        )


def _timed(name: str) -> Callable[[Callable[[AttackRun], None]], Callable[[AttackRun], None]]:
    """Record the attack's wall time in ``run.timings[name]``."""

    def wrap(attack: Callable[[AttackRun], None]) -> Callable[[AttackRun], None]:
        def timed(run: AttackRun) -> None:
            t = time.perf_counter()
            attack(run)
            run.timings[name] = time.perf_counter() - t

        timed.__doc__ = attack.__doc__
        return timed

    return wrap


def _sweep_k(run: AttackRun, regulariser: str = "constant") -> dict[str, Any]:
    return NB.choose_k(
        run.cap_train[run.k_sel],
        run.ori_train[run.k_sel],
        run.psf,
        run.response,
        regulariser=regulariser,
        metric=run.k_metric,
    )


@_timed("wiener")
def wiener(run: AttackRun) -> None:
    """Wiener with the attacker's best K on attacker-train (constant and Laplacian
    regularisers) and the per-image oracle K (an upper bound)."""
    for reg in ("constant", "laplacian"):
        info = run.k_info[f"wiener_{reg}"] = _sweep_k(run, reg)
        key = "wiener" if reg == "constant" else "wiener_laplacian"
        run.recons[key] = NB.wiener_attack(
            run.cap_test, run.psf, info["k"], run.response, reg
        ).cpu()
        run.labels[key] = (
            f"Wiener, {'constant' if reg == 'constant' else 'Laplacian'} K = "
            f"{info['k']:.2g} (attacker's best on train)"
        )
    recon, k_img = NB.wiener_oracle_attack(
        run.cap_test, run.ori_test, run.psf, run.response, metric=run.k_metric
    )
    run.recons["wiener_oracle"] = recon.cpu()
    run.k_info["wiener_oracle_k"] = k_img.tolist()
    run.labels["wiener_oracle"] = "Wiener, constant, per-image oracle K (upper bound)"


@_timed("wiener_exact")
def wiener_exact(run: AttackRun) -> None:
    """Wiener/Tikhonov on the exact linear model (CG), K swept on
    :data:`~attacks.nonblind.EXACT_K_IMAGES` attacker-train images."""
    sel = run.k_sel[: NB.EXACT_K_IMAGES]
    info = run.k_info["wiener_exact"] = NB.choose_k_exact(
        run.cap_train[sel], run.ori_train[sel], run.psf, run.response, metric=run.k_metric
    )
    run.recons["wiener_exact"] = NB.exact_model_attack(
        run.cap_test, run.psf, info["k"], run.response
    ).cpu()
    run.labels["wiener_exact"] = (
        f"Wiener/Tikhonov on the exact linear model (CG), K = {info['k']:.2g}"
    )


@_timed("unsupervised_wiener")
def unsupervised_wiener(run: AttackRun) -> None:
    """scikit-image's unsupervised Wiener on the reference test images."""
    run.recons["unsupervised_wiener"] = NB.unsupervised_wiener_attack(
        run.cap_test[run.ref_idx].cpu(), run.psf.cpu(), run.response, seed=run.seed
    )
    run.subsets["unsupervised_wiener"] = run.ref_idx
    run.labels["unsupervised_wiener"] = "skimage unsupervised_wiener"


@_timed("richardson_lucy")
def richardson_lucy(run: AttackRun) -> None:
    """scikit-image's Richardson–Lucy (30 iterations) on the reference test images."""
    run.recons["richardson_lucy"] = NB.richardson_lucy_attack(
        run.cap_test[run.ref_idx].cpu(), run.psf.cpu(), run.response
    )
    run.subsets["richardson_lucy"] = run.ref_idx
    run.labels["richardson_lucy"] = "skimage richardson_lucy (30 iterations)"


def learned_options(run: AttackRun, camera: torch.nn.Module, kind: str) -> None:
    """Complete a non-blind learned attacker's options (``AttackerSpec.needs_psf``, e.g.
    Wiener + U-Net): the attacker's own best Wiener K (unless given), the PSF and the camera
    response."""
    opts = run.options[kind]
    if "k" not in opts:
        if "wiener_constant" not in run.k_info:
            run.k_info["wiener_constant"] = _sweep_k(run)
        opts["k"] = max(run.k_info["wiener_constant"]["k"], 1e-6)
    opts.setdefault("psf", run.psf.cpu())
    opts.update({key: value for key, value in _response_options(camera).items() if key not in opts})


def _response_options(camera: torch.nn.Module) -> dict[str, Any]:
    """The camera response as WienerUNet options (response, gamma, linearize)."""
    sensor = getattr(camera, "sensor", None)
    if sensor is None:
        return {"response": "linear", "linearize": False}
    return {
        "response": sensor.response,
        "gamma": sensor.gamma,
        "linearize": bool(getattr(camera.config, "linearize_input", True)),
    }


def _learned(kind: str) -> Callable[[AttackRun], None]:
    spec = ATTACKERS[kind]

    @_timed(kind)
    def attack(run: AttackRun) -> None:
        from .training import reconstruct

        model, info = run.fit(kind, np.arange(len(run.pairs.train)), run.out / kind)
        run.recons[kind] = reconstruct(model.generator, run.cap_test, run.batch_size, run.device)
        run.learned[kind] = info
        label = f"{spec.label}, {info['epochs']} epochs (best {info['best_epoch']})"
        if info["converged"] is False:
            label += (
                f" — did not converge (validation SSIM {info['val_best_ssim']:.3f} "
                f"≤ identity {info['val_identity_ssim']:.3f})"
            )
            run.notes.append(
                f"{kind} did not converge: its best validation SSIM "
                f"({info['val_best_ssim']:.3f}) is not above the identity's "
                f"({info['val_identity_ssim']:.3f}); its row is not an attack "
                "result."
            )
        run.labels[kind] = label

    module = spec.lightning_module.rsplit(".", 1)[0]
    attack.__doc__ = f"Learned attacker: {spec.label} ({module})."
    return attack


_NONBLIND: dict[str, Callable[[AttackRun], None]] = {
    "wiener": wiener,
    "wiener_exact": wiener_exact,
    "unsupervised_wiener": unsupervised_wiener,
    "richardson_lucy": richardson_lucy,
}


def attack_functions() -> dict[str, Callable[[AttackRun], None]]:
    """Every ``--attack`` name → its function, in report order (the learned attackers as
    registered now)."""
    return {**_NONBLIND, **{kind: _learned(kind) for kind in ATTACKERS}}


def attack_names() -> tuple[str, ...]:
    """Every ``--attack`` name, in report order."""
    return (*_NONBLIND, *ATTACKERS)


def __getattr__(name: str) -> Any:
    """``REGISTRY``: :func:`attack_functions`, read from the registry when asked for."""
    if name == "REGISTRY":
        return attack_functions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

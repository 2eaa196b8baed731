"""The one registry of learned attackers: :data:`ATTACKERS` maps each name to its
:class:`AttackerSpec`, in report order.

Everything that names learned attackers reads it: the ``--attack`` names, report rows and
constructor options of the harness (``attacks.registry``, ``attacks.harness``), the
``--<name>-option`` flags of ``evaluate.py attack`` (``attacks.cli``), training and reloading
(``attacks.training``), the in-loop adversary kinds of min–max lens training
(``attacks.adversary``, ``model.adversary``) and the privacy study (``endtoend.study``,
``study_report``). Adding an attacker is its LightningModule (``attacks.learned`` or a module
of its own) plus one :class:`AttackerSpec` in :data:`ATTACKERS`.

This module imports neither Lightning nor the networks (the command lines read it to build
their options): the LightningModule is named by its import path, and the in-loop builders
import ``attacks.models`` when called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optics.checkpoint_file import register_format

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ATTACKERS",
    "AttackerSpec",
    "adversary_kinds",
    "get_attacker",
    "learned_names",
]


@dataclass(frozen=True)
class AttackerSpec:
    """One learned attacker.

    Attributes:
        name: the ``--attack`` name, the report row, the output folder and the checkpoints'
            ``kind`` / ``attacker_kind``; its CLI flag is ``--<name with dashes>-option``.
        label: the attack report's label ("…, N epochs (best M)" is appended).
        column: its column header in the study's ``study.md``.
        lightning_module: import path of its LightningModule class
            (``attacks.learned._AttackerBase`` subclass: a ``generator`` network, the content
            loss, ``vgg_weights=`` among its constructor options).
        option_example: a ``KEY=VALUE`` constructor option for the CLI's help.
        needs_psf: non-blind — the harness passes its constructor the known PSF (``psf``),
            the attacker's best Wiener K on attacker-train (``k``) and the camera response
            (``response``, ``gamma``, ``linearize``), unless given; its in-loop network is
            called ``net(captures, psf)`` with the lens's current PSF.
        weights_option: the constructor option that takes ``--backbone-weights``
            (``run_attacks(backbone_weights=...)``); dropped when a checkpoint is reloaded
            (the saved weights are used). None: no pretrained backbone.
        in_loop: builds its network as the in-loop adversary of min–max lens training
            (``model.adversary``): called with keyword arguments ``base_channels``, ``depth``,
            ``response``, ``gamma``, ``linearize`` and ``k``; None: it cannot be one.
    """

    name: str
    label: str
    column: str
    lightning_module: str
    option_example: str
    needs_psf: bool = False
    weights_option: str | None = None
    in_loop: Callable[..., nn.Module] | None = None

    @property
    def flag(self) -> str:
        """The CLI flag of its constructor options, e.g. ``--wiener-unet-option``."""
        return f"--{self.name.replace('_', '-')}-option"

    @property
    def dest(self) -> str:
        """The flag's argparse destination (and ``--config`` key), e.g. ``wiener_unet_option``."""
        return f"{self.name}_option"

    @property
    def class_name(self) -> str:
        """The LightningModule's class name (without importing it)."""
        return self.lightning_module.rsplit(".", 1)[1]

    def lightning_class(self) -> type:
        """The LightningModule class (imported on first use)."""
        module, cls = self.lightning_module.rsplit(".", 1)
        return getattr(importlib.import_module(module), cls)


def _unet(base_channels: int, depth: int, **_: Any) -> nn.Module:
    """The in-loop U-Net: identity at initialisation."""
    from .models import UNet

    return UNet(base_channels, depth)


def _wiener_unet(
    base_channels: int, depth: int, response: str, gamma: float, linearize: bool, k: float
) -> nn.Module:
    """The in-loop Wiener + U-Net refiner: the Wiener attack at initialisation, given the
    lens's PSF at every call."""
    from .models import WienerUNet

    return WienerUNet(None, k, response, gamma, linearize, base_channels, depth)


ATTACKERS: dict[str, AttackerSpec] = {
    spec.name: spec
    for spec in (
        AttackerSpec(
            name="deblurgan",
            label="DeblurGAN-v2 style (FPN-MobileNetV2, RaGAN-LS)",
            column="DeblurGAN-v2",
            lightning_module="attacks.learned.DeblurGANAttacker",
            option_example="ndf=32",
            weights_option="backbone_weights",
        ),
        AttackerSpec(
            name="unet",
            label="U-Net",
            column="U-Net",
            lightning_module="attacks.learned.UNetAttacker",
            option_example="base_channels=16",
            in_loop=_unet,
        ),
        AttackerSpec(
            name="wiener_unet",
            label="Wiener + U-Net refiner (known PSF)",
            column="Wiener+U-Net",
            lightning_module="attacks.learned.WienerUNetAttacker",
            option_example="base_channels=16",
            needs_psf=True,
            in_loop=_wiener_unet,
        ),
    )
}


def learned_names() -> tuple[str, ...]:
    """The learned attackers' names, in report order."""
    return tuple(ATTACKERS)


def get_attacker(name: str) -> AttackerSpec:
    """The spec of learned attacker ``name`` (``ValueError`` naming the choices)."""
    if name not in ATTACKERS:
        raise ValueError(f"unknown learned attacker {name!r}: choose one of {list(ATTACKERS)}")
    return ATTACKERS[name]


def adversary_kinds() -> tuple[str, ...]:
    """``model.adversary``'s choices: "none" and every attacker with an in-loop builder."""
    return ("none", *(name for name, spec in ATTACKERS.items() if spec.in_loop is not None))


def _is_attacker_checkpoint(ckpt: Any) -> bool:
    """A learned attacker's Lightning checkpoint (it names its kind, ``attacker_kind``, and
    every attacker's weights live under ``generator.``) or an exported ``generator.pt``."""
    hparams, state = ckpt.get("hyper_parameters"), ckpt.get("state_dict")
    if isinstance(hparams, dict) and "camera" not in hparams:
        if "attacker_kind" in ckpt or (
            isinstance(state, dict) and any(str(k).startswith("generator.") for k in state)
        ):
            return True
    return "kind" in ckpt and "hparams" in ckpt


register_format(
    "attacker",
    "an attacker checkpoint (DeblurGAN-v2 / U-Net, attacks.learned)",
    _is_attacker_checkpoint,
)

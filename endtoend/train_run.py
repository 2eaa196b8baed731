"""The demo's and the study's training runs as typed values (:class:`TrainRun`), turned into
LightningCLI arguments in one place (:meth:`TrainRun.args`) and fitted by :func:`train`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from endtoend.train_cli import PrivcamCLI

__all__ = ["Option", "TrainRun", "option_args", "train"]

#: One option of a :class:`TrainRun` on top of its config: ``("config", FILE)`` merges a config
#: file there, ``("model.w_attack", 0)`` sets a LightningCLI key (dotted, as in the YAML).
Option = tuple[str, Any]


@dataclass(frozen=True)
class TrainRun:
    """One ``train.py fit`` run of the demo or the study, as values rather than an argv list.

    ``config``: the training config (``configs/demo.yaml``); ``preset``: the camera;
    ``blind``: the captioner sees a grey image (the ideal preset's blind row); ``options``:
    further config files and keys in the order given (later wins); ``init_from``: the
    checkpoint whose captioner starts the run; ``max_epochs`` / ``seed``: None keeps the
    config's. :meth:`args` is what LightningCLI parses."""

    config: str
    run_dir: Path
    preset: str = "privacy"
    blind: bool = False
    options: tuple[Option, ...] = ()
    init_from: str | None = None
    max_epochs: int | None = None
    seed: int | None = None

    def args(self) -> list[str]:
        argv = ["fit", "--config", str(self.config), "--model.camera.preset", self.preset,
                "--trainer.default_root_dir", str(self.run_dir),
                "--trainer.enable_progress_bar", "false"]  # fmt: skip
        if self.blind:
            argv += ["--model.blind", "true"]
        argv += option_args(self.options)
        if self.init_from is not None:
            argv += ["--model.init_from", str(self.init_from)]
        if self.max_epochs is not None:
            argv += ["--trainer.max_epochs", str(self.max_epochs)]
        if self.seed is not None:
            argv += ["--seed_everything", str(self.seed)]
        return argv


def option_args(options: Sequence[Option]) -> list[str]:
    """``(key, value)`` options as LightningCLI arguments (``--key value``; booleans lower case,
    as YAML writes them)."""
    argv: list[str] = []
    for key, value in options:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        argv += [f"--{key}", text]
    return argv


def train(run: TrainRun) -> PrivcamCLI:
    """Fit one :class:`TrainRun` in this process; returns the LightningCLI (its trainer, model
    and data module)."""
    from endtoend.train_cli import cli_main  # Lightning: imported when a run starts

    return cli_main(run.args())

"""``python train.py``: LightningCLI over the end-to-end model and the caption data, with
privcam's defaults (checkpoints, loggers, safeguards) and its one-line error contract."""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningCLI

from attacks.training import last_checkpoint
from captioning.datamodule import CaptionDataModule
from endtoend.callbacks import EpochProgress, NonFiniteLossStop
from endtoend.checkpoints import check_ckpt_path
from endtoend.privacy_captioner import PrivacyCaptioner
from optics.camera import LENS_OPTIONS
from optics.cli_errors import run_cli

__all__ = ["PrivcamCLI", "check_renamed_options", "cli_main", "main", "option_error"]


class PrivcamCLI(LightningCLI):
    """LightningCLI with privcam's defaults: vocabulary size linked from the data, a checkpoint
    callback (best by val/CIDEr as best.ckpt, in <default_root_dir>/checkpoints) and beside it
    last.ckpt after every epoch (``attacks.training.last_checkpoint``: ``--ckpt_path last``
    resumes from the last epoch, not the last gain), and TensorBoard + CSV loggers unless others
    are given."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        from lightning.pytorch.callbacks import ModelCheckpoint

        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/CIDEr",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best",
                "checkpoint.save_last": False,  # last.ckpt: its own callback, every epoch
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
        if trainer.checkpoint_callback is not None:
            trainer.callbacks.append(last_checkpoint(trainer.checkpoint_callback.dirpath))
        return trainer


def cli_main(
    args: Sequence[str] | None = None, run: bool = True, exit_on_error: bool = True
) -> PrivcamCLI:
    """LightningCLI entry point (``args`` like sys.argv[1:]).

    ``exit_on_error=False`` raises argument errors (``argparse.ArgumentError``) instead of
    printing the usage and exiting; :func:`main` turns them into privcam's one-line errors.
    """
    check_renamed_options(args if args is not None else sys.argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_float32_matmul_precision("high")
    with warnings.catch_warnings():
        # the demo and the study call this in-process with ``args`` while sys.argv holds their
        # own command line, on purpose; Lightning warns about that mix at every call
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        return PrivcamCLI(
            PrivacyCaptioner,
            CaptionDataModule,
            args=args,
            run=run,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"default_env": False, "exit_on_error": exit_on_error},
        )


def check_renamed_options(args: Sequence[str]) -> None:
    """The lens options moved under ``model.camera.lens``: the old flat form on the command
    line or in a ``--config`` file is a one-line error naming the new one (jsonargparse alone
    says only that the camera's class could not be built)."""
    for arg in args:
        name = arg.split("=", 1)[0].removeprefix("--model.camera.")
        if arg.startswith("--model.camera.") and name in LENS_OPTIONS:
            raise ValueError(
                f"--model.camera.{name} is now --model.camera.lens.{name} (the lens options "
                "are under model.camera.lens)"
            )
    for flag, path in itertools.pairwise(args):
        if flag not in ("-c", "--config") or not os.path.isfile(path):
            continue  # a missing file is jsonargparse's error
        with open(path, encoding="utf-8") as f:
            try:
                doc = yaml.safe_load(f)
            except yaml.YAMLError:
                continue  # jsonargparse names the syntax error
        camera = (doc.get("model") or {}).get("camera") if isinstance(doc, dict) else None
        old = [k for k in camera if k in LENS_OPTIONS] if isinstance(camera, dict) else []
        if old:
            raise ValueError(
                f"--config {path}: model.camera.{old[0]} is now model.camera.lens.{old[0]}; "
                f"move {', '.join(old)} under model.camera.lens"
            )


def option_error(message: str, args: Sequence[str]) -> str:
    """jsonargparse's multi-line errors as one line: the sub-error that names the problem
    (not the tried Union subtypes and the echoed namespace), the config file when it is one."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    useful = [ln[2:] for ln in lines if ln.startswith("- ") and not ln.startswith("- Expected a")]
    if useful and useful[0].startswith("Problem with given class_path"):
        # a nested dataclass (model.camera → its lens): name the innermost key in full
        at = lines.index("- " + useful[0])
        inner = lines[at + 1 :]
        keys = [ln for ln in lines[:at] if ln.startswith("Parser key")]
        keys += [ln for ln in inner if ln.startswith("Parser key")][:1]
        detail = next((ln for ln in inner if not ln.startswith(("Parser key", "- "))), "")
        names = [ln.split('"')[1] for ln in keys if ln.count('"') >= 2]
        if names and detail:
            return f"{'.'.join(names)}: {detail}"
    if useful:
        key = next((ln for ln in lines if ln.startswith("Parser key")), "")
        lines = [key.rstrip(":") + ":" if key else "", useful[0]]
    text = " ".join(ln for ln in lines if ln and not ln.startswith("Given value"))
    if "Problems parsing config" in text:
        configs = [b for a, b in itertools.pairwise(args) if a in ("-c", "--config")]
        text = f"--config {', '.join(configs)}: {text}" if configs else text
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """``python train.py ...`` with privcam's error contract: bad options, configs and data give
    one line ``error: ...`` (exit 2), a failed run (non-finite loss) exit 1; ``--debug`` or
    ``PRIVCAM_DEBUG=1`` shows the traceback."""

    def _run(args: list[str]) -> int:
        check_ckpt_path(args)
        if argv is None:  # command line: LightningCLI reads sys.argv (warns when given both)
            sys.argv = [sys.argv[0], *args]
        try:
            cli_main(
                None if argv is None else args,
                exit_on_error=any(a in ("-h", "--help") for a in args),
            )
        except argparse.ArgumentError as err:
            raise ValueError(
                f"train.py: {option_error(str(err), args)} (see `python train.py fit --help`)"
            ) from err
        except ValueError as err:
            if "Union subtypes" not in str(err):
                raise
            raise ValueError(option_error(str(err), args)) from err
        except MisconfigurationException as err:  # Lightning's own option checks
            raise ValueError(f"trainer options: {err}") from err
        return 0

    return run_cli(_run, argv)

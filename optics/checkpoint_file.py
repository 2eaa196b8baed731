"""Reading privcam's checkpoint files safely, and telling their formats apart.

:func:`read_checkpoint` is the one ``torch.load`` of every privcam format (weights only, errors
that name the file). Each format is recognised by the package that writes it, which registers
a recogniser here with :func:`register_format` (optics: camera files; captioning: captioner
files; attacks: attacker checkpoints; endtoend: training checkpoints), so this bottom layer
knows no format above it; :func:`checkpoint_kind` asks the registered ones.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["checkpoint_kind", "describe_checkpoint_kind", "read_checkpoint", "register_format"]


@dataclass(frozen=True)
class _Format:
    description: str
    recognise: Callable[[Mapping[str, Any]], bool]
    priority: int


_FORMATS: dict[str, _Format] = {}
_UNKNOWN = "not a privcam checkpoint"


def register_format(
    kind: str,
    description: str,
    recognise: Callable[[Mapping[str, Any]], bool],
    priority: int = 0,
) -> None:
    """Register a checkpoint format: ``recognise(ckpt)`` says whether a loaded dict is one;
    formats with a higher ``priority`` are asked first; ``description`` names it in errors
    (e.g. "an attacker checkpoint (DeblurGAN-v2 / U-Net, attacks.learned)")."""
    _FORMATS[kind] = _Format(description, recognise, priority)


def checkpoint_kind(ckpt: Mapping[str, Any]) -> str:
    """The registered format of a loaded checkpoint dict (``training``, ``camera``,
    ``captioner``, ``attacker``, … as their packages registered them), or ``unknown``."""
    for kind, fmt in sorted(_FORMATS.items(), key=lambda item: -item[1].priority):
        if fmt.recognise(ckpt):
            return kind
    return "unknown"


def describe_checkpoint_kind(kind: str) -> str:
    """A phrase for :func:`checkpoint_kind`'s answer, e.g. for an error message."""
    fmt = _FORMATS.get(kind)
    return fmt.description if fmt is not None else _UNKNOWN


def read_checkpoint(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """``torch.load`` a checkpoint dict with errors that name the file and what is wrong
    (missing, a directory, empty, truncated or not a PyTorch file, not a dict)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"checkpoint {path} is a directory; pass the checkpoint file "
            "(e.g. runs/…/checkpoints/best.ckpt)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(
            f"checkpoint {path} is empty (0 bytes): the run that wrote it was "
            "interrupted; use another checkpoint (e.g. last.ckpt) or retrain"
        )
    try:
        # weights_only: every privcam checkpoint is tensors and plain containers, so nothing in
        # a file can run code on load
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))  # torch names the refused class
        what = f" ({found.group(1)})" if found else ""
        raise ValueError(
            f"checkpoint {path} holds Python objects{what} that a weights-only load refuses; "
            "privcam writes none: pass a checkpoint written by privcam, or re-save this one's "
            "tensors and plain settings"
        ) from err
    except Exception as err:  # zip/pickle errors of truncated or foreign files
        raise ValueError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {err}); the file "
            "is truncated or not a PyTorch checkpoint"
        ) from err
    if not isinstance(ckpt, Mapping):
        raise ValueError(
            f"{path} is not a privcam checkpoint (it holds a "
            f"{type(ckpt).__name__}, expected a dict)"
        )
    return dict(ckpt)

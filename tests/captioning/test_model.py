"""Encoder, decoder and Captioner: shapes, weights, freezing, regulariser."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from captioning.decoder import TopDownDecoder, attend, caption_loss, doubly_stochastic_loss
from captioning.encoder import ResNetEncoder, build_resnet
from captioning.model import Captioner, CaptionerConfig, load_checkpoint, save_checkpoint
from captioning.vocab import Vocabulary


def test_encoder_shapes_and_normalisation() -> None:
    torch.manual_seed(0)
    enc = ResNetEncoder("resnet18", weights=None, grid_size=2, trainable_from="conv1").eval()
    images = torch.rand(2, 3, 64, 64)
    grid, mean = enc(images)
    assert grid.shape == (2, 4, 512) and mean.shape == (2, 512)
    fmap = enc.feature_map(images)
    assert fmap.shape == (2, 512, 2, 2)
    torch.testing.assert_close(mean, fmap.mean(dim=(2, 3)))
    # ImageNet normalisation inside: same as torchvision's trunk on normalised input
    ref = torchvision.models.resnet18()
    ref.load_state_dict(
        {
            **{f"conv1.{k}": v for k, v in enc.stem[0].state_dict().items()},
            **{f"bn1.{k}": v for k, v in enc.stem[1].state_dict().items()},
            **{
                f"layer{i}.{k}": v
                for i in range(1, 5)
                for k, v in getattr(enc, f"layer{i}").state_dict().items()
            },
            "fc.weight": ref.fc.weight,
            "fc.bias": ref.fc.bias,
        }
    )
    ref.eval()
    norm = torchvision.transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    trunk = torch.nn.Sequential(*list(ref.children())[:-2])
    torch.testing.assert_close(trunk(norm(images)), fmap, rtol=1e-4, atol=1e-5)
    grid7, _ = ResNetEncoder("resnet18", grid_size=7)(torch.rand(1, 3, 64, 64))
    assert grid7.shape == (1, 49, 512)


def test_encoder_freezing_and_channels_last() -> None:
    enc = ResNetEncoder("resnet18", trainable_from="layer4", channels_last=True)
    trainable = {n.split(".")[0] for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == {"layer4"}
    enc.train()
    assert not enc.stem[1].training and not enc.layer3[0].bn1.training
    assert enc.layer4[0].bn1.training
    images = torch.rand(1, 3, 64, 64, requires_grad=True)
    grid, _ = enc(images)
    grid.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0  # gradient reaches optics
    frozen = ResNetEncoder("resnet18", trainable_from=None)
    assert not any(p.requires_grad for p in frozen.parameters())
    # frozen BatchNorm uses its running statistics from construction on, not only after the
    # first .train(): a model trained without calling .train() must see the same features
    # when it is evaluated
    assert not any(m.training for m in frozen.modules() if isinstance(m, torch.nn.BatchNorm2d))
    x = torch.rand(4, 3, 64, 64)
    before = frozen(x)[1]
    assert torch.equal(frozen.eval().train()(x)[1], before)
    with pytest.raises(ValueError, match="trainable_from"):
        ResNetEncoder("resnet18", trainable_from="layer9")
    with pytest.raises(ValueError, match="resnet7"):
        ResNetEncoder("resnet7")


def test_weights_from_local_file_and_offline_enum(tmp_path: Path, monkeypatch) -> None:
    torch.manual_seed(1)
    src = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(src.state_dict(), path)
    net = build_resnet("resnet18", path)
    torch.testing.assert_close(net.layer1[0].conv1.weight, src.layer1[0].conv1.weight)
    torch.save({k: v for k, v in src.state_dict().items() if not k.startswith("fc.")}, path)
    build_resnet("resnet18", path)  # headless state dict is fine
    with pytest.raises(ValueError, match="does not match resnet34"):
        build_resnet("resnet34", path)
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        build_resnet("resnet18", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"IMAGENET1K_V9.*IMAGENET1K_V1"):
        build_resnet("resnet18", "IMAGENET1K_V9")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="pass the local file"):
        build_resnet("resnet18", "IMAGENET1K_V1")


def test_decoder_shapes_and_projection_once(monkeypatch) -> None:
    torch.manual_seed(0)
    dec = TopDownDecoder(
        vocab_size=11, feature_dim=8, embed_dim=6, hidden_dim=10, attention_dim=5, dropout=0.0
    )
    features, mean = torch.randn(2, 4, 8), torch.randn(2, 8)
    captions = torch.randint(1, 11, (5, 7))
    c2i = torch.tensor([0, 0, 0, 1, 1])
    calls = []
    original = dec.feat_proj.forward
    monkeypatch.setattr(dec.feat_proj, "forward", lambda x: calls.append(x.shape) or original(x))
    logits, alphas = dec(features, mean, captions, c2i)
    assert logits.shape == (5, 6, 11) and alphas.shape == (5, 6, 4)
    assert calls == [torch.Size([2, 4, 8])]  # W_v v once per image, not per step/caption
    torch.testing.assert_close(alphas.sum(-1), torch.ones(5, 6))
    # expanding after the encoder == giving each caption its own copy of the features
    logits2, _ = dec(features[c2i], mean[c2i], captions)
    torch.testing.assert_close(logits, logits2)


def test_attend_matches_formula() -> None:
    torch.manual_seed(0)
    v, pv, q, w = torch.randn(3, 5, 4), torch.randn(3, 5, 6), torch.randn(3, 6), torch.randn(6)
    attended, alpha = attend(v, pv, q, w)
    a = torch.stack(
        [torch.stack([w @ torch.tanh(pv[n, i] + q[n]) for i in range(5)]) for n in range(3)]
    )
    torch.testing.assert_close(alpha, torch.softmax(a, -1))
    torch.testing.assert_close(attended, torch.einsum("nr,nrc->nc", alpha, v))


def test_doubly_stochastic_loss_by_hand() -> None:
    alphas = torch.tensor([[[0.5, 0.5], [1.0, 0.0], [0.3, 0.7]]])  # (1, T=3, R=2)
    # three steps over two regions: target τ = 3/2; sums (1.8, 1.2) -> 0.3² + 0.3² = 0.18
    torch.testing.assert_close(doubly_stochastic_loss(alphas), torch.tensor(0.18))
    # last step padded: τ = 1 (Xu et al.'s form); sums (1.5, 0.5) -> 0.25 + 0.25
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(doubly_stochastic_loss(alphas, mask), torch.tensor(0.5))
    # more regions than steps: the published Σ_i (1 − Σ_t α)² exactly
    wide = torch.tensor([[[0.5, 0.5, 0.0, 0.0], [0.0, 0.2, 0.8, 0.0]]])  # (1, T=2, R=4)
    torch.testing.assert_close(
        doubly_stochastic_loss(wide), torch.tensor(0.5**2 + 0.3**2 + 0.2**2 + 1.0)
    )
    logits = torch.zeros(1, 3, 4)
    targets = torch.tensor([[2, 3, 0]])
    torch.testing.assert_close(caption_loss(logits, targets), torch.log(torch.tensor(4.0)))


def test_captioner_forward_generate_and_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    vocab = Vocabulary.build(["a red circle", "a blue square"], min_count=1)
    config = CaptionerConfig(
        vocab_size=len(vocab),
        backbone="resnet18",
        grid_size=2,
        embed_dim=16,
        hidden_dim=16,
        attention_dim=8,
    )
    model = Captioner(config, vocab)
    images = torch.rand(2, 3, 64, 64)
    captions = vocab.encode_batch(["a red circle"] * 3 + ["a blue square"] * 2)
    logits, alphas = model(images, captions, torch.tensor([0, 0, 0, 1, 1]))
    assert logits.shape == (5, 4, len(vocab)) and alphas.shape == (5, 4, 4)
    out = model.generate(images, beam_size=3, max_len=5)
    assert model.training  # mode restored
    assert out.tokens.shape[0] == 2 and out.tokens.shape[1] <= 5 and len(out.captions) == 2
    save_checkpoint(tmp_path / "c.pt", model, vocab)
    loaded, vocab2 = load_checkpoint(tmp_path / "c.pt")
    assert vocab2.itos == vocab.itos and not loaded.training
    model.eval()
    torch.testing.assert_close(loaded(images, captions[:2])[0], model(images, captions[:2])[0])
    with pytest.raises(FileNotFoundError, match=r"nothing\.pt"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_grid_positions_row_major_and_zero_start() -> None:
    from captioning.decoder import GridPositions, grid_coordinates

    coords = grid_coordinates(4, frequencies=(1,))  # 2×2 grid, centres at ±0.5
    # columns: sin(πx), sin(πy), cos(πx), cos(πy); cells row major (top-left, top-right, ...)
    torch.testing.assert_close(coords[:, 0], torch.tensor([-1.0, 1.0, -1.0, 1.0]))
    torch.testing.assert_close(coords[:, 1], torch.tensor([-1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="square grid"):
        grid_coordinates(6)
    positions = GridPositions(8)
    features = torch.randn(2, 16, 8)
    torch.testing.assert_close(positions(features), features)  # zero init: a no-op at first
    torch.nn.init.normal_(positions.proj.weight)
    moved = positions(features) - features
    assert moved.shape == (2, 16, 8) and not torch.allclose(moved[:, 0], moved[:, 5])
    torch.testing.assert_close(moved[0], moved[1])  # the same cell gets the same embedding
    config = CaptionerConfig(vocab_size=7, backbone="resnet18", grid_size=2, embed_dim=8,
                             hidden_dim=8, attention_dim=4, grid_positions=True)  # fmt: skip
    model = Captioner(config)
    grid, _ = model.encode(torch.rand(1, 3, 64, 64))
    assert grid.shape == (1, 4, 512) and model.positions is not None

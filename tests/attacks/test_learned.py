"""Learned attackers: the loss goes down on a tiny pair set; checkpoints reload and resume."""

import numpy as np
import pytest
import torch

from attacks.learned import PairDataset
from attacks.losses import content_loss, ragan_ls_d_loss, ragan_ls_g_loss
from attacks.pairs import simulate_pairs, to_tensor
from attacks.scenes import make_embedded_set
from attacks.training import load_attacker, reconstruct, train_attacker

TINY = {
    "deblurgan": {"num_filters": 16, "ndf": 8, "lr": 1e-3, "backbone_weights": None},
    "unet": {"base_channels": 8, "depth": 2, "lr": 2e-3},
}


@pytest.fixture
def tiny_pairs(small_camera):
    return simulate_pairs(
        small_camera, make_embedded_set(8, 32, seed=0), None, seed=0, train_fraction=0.5
    )


@pytest.mark.parametrize("kind", ["unet", "deblurgan"])
def test_attacker_learns_and_reloads(kind, tiny_pairs, tmp_path):
    cap, ori = tiny_pairs.captures[tiny_pairs.train], tiny_pairs.originals[tiny_pairs.train]
    x, y = to_tensor(cap), to_tensor(ori)
    # Zero-initialised output layer: the untrained attacker returns the capture.
    model, info = train_attacker(kind, cap, ori, tmp_path, epochs=2, batch_size=2, **TINY[kind])
    assert info["resumed_from"] is None and info["epochs"] == 2
    model, info = train_attacker(kind, cap, ori, tmp_path, epochs=5, batch_size=2, **TINY[kind])
    assert info["resumed_from"] is not None and info["epochs"] == 5
    before = content_loss(x, y).item()
    after = content_loss(reconstruct(model.generator, x), y).item()
    assert after < before - 0.01, (before, after)
    ref = reconstruct(model.generator, x)
    for path in (info["checkpoint"], info["generator"]):
        assert torch.allclose(reconstruct(load_attacker(path), x), ref, atol=1e-6)
    assert (tmp_path / "csv" / "version_0" / "metrics.csv").is_file()
    assert info["content_loss"].startswith("L1 + (1 - SSIM)")


def test_ragan_ls_signs():
    real, fake = torch.full((4, 1, 3, 3), 0.5), torch.full((4, 1, 3, 3), -0.5)
    # Real judged 1 above the average fake (and vice versa): D's loss is 0, G's is (1+1)² = 4.
    assert ragan_ls_d_loss(real, fake).item() == pytest.approx(0.0)
    assert ragan_ls_g_loss(real, fake).item() == pytest.approx(4.0)
    assert ragan_ls_d_loss(fake, real).item() == pytest.approx(4.0)


def test_pair_dataset_errors():
    a = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="mismatched pairs: 3 captures"):
        PairDataset(a, a[:2])
    with pytest.raises(ValueError, match="attacker-train split is empty"):
        PairDataset(a[:0], a[:0])
    with pytest.raises(ValueError, match="unknown learned attacker 'gan'"):
        train_attacker("gan", a, a, "unused")


def test_wiener_unet_starts_at_wiener_learns_and_reloads(tiny_pairs, small_camera, tmp_path):
    from attacks.learned import WienerUNetAttacker
    from attacks.nonblind import Response, wiener_attack

    cap, ori = tiny_pairs.captures[tiny_pairs.train], tiny_pairs.originals[tiny_pairs.train]
    x, y = to_tensor(cap), to_tensor(ori)
    opts = {"psf": tiny_pairs.psf, "k": 1e-2, "base_channels": 8, "depth": 2, "lr": 2e-3}
    untrained = WienerUNetAttacker(**opts).generator
    wiener = wiener_attack(x, tiny_pairs.psf, 1e-2, Response.from_camera(small_camera))
    assert torch.allclose(reconstruct(untrained, x), wiener.clamp(0, 1), atol=1e-5)
    before = content_loss(reconstruct(untrained, x), y).item()
    model, info = train_attacker("wiener_unet", cap, ori, tmp_path, epochs=6, batch_size=2, **opts)
    after = content_loss(reconstruct(model.generator, x), y).item()
    assert after < before - 0.01, (before, after)
    assert info["k_final"] != pytest.approx(1e-2)  # K is learned with the refiner
    ref = reconstruct(model.generator, x)
    for path in (info["checkpoint"], info["generator"]):
        assert torch.allclose(reconstruct(load_attacker(path), x), ref, atol=1e-6)


def test_attacker_below_identity_is_flagged(tmp_path):
    # captures equal to their originals: the identity is perfect (SSIM 1), so any trained
    # attacker ends below it on validation and must be reported as not converged
    rng = np.random.default_rng(0)
    ori = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    _, info = train_attacker("unet", ori, ori, tmp_path, epochs=1, batch_size=4, **TINY["unet"])
    assert info["val_pairs"] == 1 and info["val_identity_ssim"] == pytest.approx(1.0)
    assert info["val_best_ssim"] < 1.0 and info["converged"] is False
    assert len(info["val_history"]) == 1 and info["checkpoint"].endswith("best.ckpt")

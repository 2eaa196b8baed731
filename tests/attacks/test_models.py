"""attacks.models: the learned attackers' networks start as the identity / the Wiener attack,
keep shapes, and load weights through captioning.weights."""

import pytest
import torch

from attacks import nonblind as NB
from attacks.models import (
    FPNMobileNetV2Generator,
    NLayerDiscriminator,
    UNet,
    VGG19Features,
    WienerUNet,
)


def test_untrained_generators_are_the_identity():
    x = torch.rand(2, 3, 32, 32)
    gen = FPNMobileNetV2Generator(None, num_filters=16, num_filters_fpn=32).eval()
    assert gen.weights_note == "random"
    with torch.no_grad():
        torch.testing.assert_close(gen(x), x, atol=1e-6, rtol=0)
    unet = UNet(base_channels=8, depth=2).eval()
    with torch.no_grad():
        out = unet(x)
    assert out.shape == x.shape


def test_untrained_wiener_unet_is_the_wiener_attack(gaussian_psf):
    psf = gaussian_psf(7, 1.5).float()
    x = torch.rand(2, 3, 32, 32)
    model = WienerUNet(
        psf, k=1e-2, response="linear", linearize=False, base_channels=8, depth=2
    ).eval()
    assert model.k == pytest.approx(1e-2)
    with torch.no_grad():
        ours = model(x)
    reference = NB.wiener_attack(x, psf, 1e-2, NB.Response.identity())
    torch.testing.assert_close(ours, reference.float(), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="must be > 0"):
        WienerUNet(psf, k=0.0)


def test_discriminator_scores_patches():
    d = NLayerDiscriminator(n_layers=2, ndf=8)
    assert d(torch.rand(1, 3, 32, 32)).dim() == 4


def test_perceptual_features_need_pretrained_weights():
    with pytest.raises(RuntimeError, match="needs pretrained weights"):
        VGG19Features("none")

"""The differentiable Wiener leakage (attacks.losses) against the harness."""

import pytest
import torch

from attacks import functional as AF
from attacks import nonblind as NB
from optics.functional import linear_convolve


def test_wiener_leakage_is_the_harness_oracle(astronaut64, gaussian_psf):
    from attacks.losses import wiener_leakage
    from attacks.metrics import ssim

    gen = torch.Generator().manual_seed(2)
    psf = gaussian_psf(9, 1.5).float()
    x = astronaut64.float().repeat(3, 1, 1, 1) * torch.tensor([1.0, 0.7, 0.4]).view(3, 1, 1, 1)
    y = (linear_convolve(x, psf) + 0.02 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    ks = AF.log_k_grid(1e-4, 1.0, 9)
    leak, per_k = wiener_leakage(y, x, psf, ks)
    oracle, _ = NB.wiener_oracle_attack(y, x, psf, ks=ks)
    assert per_k.shape == (9, 3)
    assert float(leak) == pytest.approx(float(ssim(oracle, x).mean()), abs=1e-5)
    # the oracle is at least as good as the attacker's single best K
    assert float(leak) >= float(per_k.mean(dim=1).max()) - 1e-6


def test_wiener_leakage_gradient_blurs_the_psf(astronaut64, gaussian_psf):
    # Following -∇ of the leakage w.r.t. the PSF (its log-weights) must make the PSF harder to
    # invert: the leakage falls, and a sharp PSF leaks more than a wide one.
    from attacks.losses import wiener_leakage

    gen = torch.Generator().manual_seed(3)
    x = astronaut64.float()
    noise = 0.02 * torch.randn(x.shape, generator=gen)
    ks = AF.log_k_grid(1e-4, 1.0, 5)

    def leakage(logits: torch.Tensor) -> torch.Tensor:
        psf = torch.softmax(logits.flatten(1), dim=1).view_as(logits)
        return wiener_leakage((linear_convolve(x, psf) + noise).clamp(0, 1), x, psf, ks)[0]

    sharp = torch.log(gaussian_psf(15, 0.7).float() + 1e-8)
    wide = torch.log(gaussian_psf(15, 4.0).float() + 1e-8)
    assert float(leakage(sharp)) > float(leakage(wide)) + 0.1
    logits = torch.log(gaussian_psf(15, 1.5).float() + 1e-8).requires_grad_(True)
    first = float(leakage(logits).detach())
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(10):
        opt.zero_grad()
        leakage(logits).backward()
        opt.step()
    assert float(leakage(logits).detach()) < first - 0.02

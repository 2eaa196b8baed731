"""The harness's attacks (attacks.nonblind): K sweep, oracle, scikit-image references, input
validation."""

import pytest
import torch

from attacks import functional as AF
from attacks import nonblind as NB
from attacks.metrics import psnr
from optics.functional import linear_convolve


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean PSNR (dB) of the batch, by the project's metric."""
    return float(psnr(a, b).mean())


def test_k_sweep_picks_the_known_optimum(gaussian_psf, circular_blur):
    # White Gaussian signal (variance σx²) + white noise (σn²) under a circular blur: the
    # MSE-optimal constant-K Wiener filter has K = σn² / σx² exactly.
    gen = torch.Generator().manual_seed(0)
    sx, sn = 1.0, 0.1
    x = sx * torch.randn(8, 3, 48, 48, generator=gen, dtype=torch.float64)
    psf = gaussian_psf(7, 1.2)
    y = circular_blur(x, psf) + sn * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    ks = AF.log_k_grid(1e-5, 1e1, 13)  # half-decade steps, contains 1e-2
    ident = NB.Response(lambda v: v, lambda v: v)
    out = NB.choose_k(y, x, psf, ident, ks, metric="psnr", boundary="circular")
    assert out["k"] == pytest.approx(sn**2 / sx**2, rel=1e-6)


def test_oracle_is_an_upper_bound(astronaut64, gaussian_psf):
    gen = torch.Generator().manual_seed(1)
    psf = gaussian_psf(9, 1.5).float()
    x = astronaut64.float().repeat(3, 1, 1, 1) * torch.tensor([1.0, 0.7, 0.4]).view(3, 1, 1, 1)
    y = (linear_convolve(x, psf) + 0.02 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    ks = AF.log_k_grid(1e-4, 1.0, 9)
    best = NB.choose_k(y, x, psf, ks=ks)
    attacker = NB.wiener_attack(y, psf, best["k"])
    oracle, k_img = NB.wiener_oracle_attack(y, x, psf, ks=ks)
    from attacks.metrics import ssim

    assert (ssim(oracle, x) >= ssim(attacker, x) - 1e-6).all()
    assert k_img.shape == (3,)


def test_bad_inputs_name_the_problem():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"PSF of 32×32 px is larger than the 16×16.*psf_size_px"):
        AF.wiener_deconvolve(x, torch.ones(3, 32, 32) / 1024, 0.01)
    with pytest.raises(ValueError, match=r"k \(noise-to-signal ratio\) must be >= 0"):
        AF.wiener_deconvolve(x, torch.ones(3, 3, 3) / 9, -1.0)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        AF.wiener_deconvolve(x, torch.ones(2, 3, 3) / 9, 0.01)
    with pytest.raises(ValueError, match="unknown regulariser 'tv'"):
        AF.wiener_deconvolve(x, torch.ones(3, 3, 3) / 9, 0.01, regulariser="tv")


def test_skimage_reference_attacks_run(astronaut64, gaussian_psf):
    psf = gaussian_psf(6, 1.0).float()
    x = astronaut64.float()
    y = linear_convolve(x, psf)
    rl = NB.richardson_lucy_attack(y, psf, num_iter=10)
    uw = NB.unsupervised_wiener_attack(y, psf, max_num_iter=30)
    assert rl.shape == uw.shape == x.shape
    assert _psnr(rl, x) > _psnr(y, x)
    for rec in (rl, uw):  # even-sized PSF: no one-pixel shift
        for shift in ((1, 0), (0, 1), (-1, 0), (0, -1)):
            assert _psnr(rec, x) > _psnr(torch.roll(rec, shift, (-2, -1)), x) + 1

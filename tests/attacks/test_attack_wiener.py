"""Wiener family: recovery, agreement with scikit-image, K sweep, input validation."""

import numpy as np
import pytest
import torch
from skimage import restoration

from attacks import functional as AF
from attacks import nonblind as NB
from optics.functional import linear_convolve


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def _circular_blur(x: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
    return torch.fft.irfft2(torch.fft.rfft2(x) * AF.psf_to_otf(psf, x.shape[-2:]), s=x.shape[-2:])


def test_noiseless_small_psf_is_recovered(astronaut64, gaussian_psf):
    x, psf = astronaut64, gaussian_psf(5, 0.7)
    # Circular problem: the textbook Wiener filter inverts it.
    rec = AF.wiener_deconvolve(_circular_blur(x, psf), psf, 1e-8, boundary="circular")
    assert _psnr(rec, x) > 35
    # The camera's linear (zero-padded) model: exact-model least squares recovers everything,
    # the padded + tapered Wiener filter everything but a thin border.
    y = linear_convolve(x, psf)
    assert _psnr(AF.linear_model_deconvolve(y, psf, 1e-8, iterations=200), x) > 35
    rec = AF.wiener_deconvolve(y, psf, 1e-6, boundary="taper")
    assert _psnr(rec[..., 8:-8, 8:-8], x[..., 8:-8, 8:-8]) > 35


@pytest.mark.parametrize("shape,k_size", [((64, 64), 7), ((40, 57), 6)])
def test_matches_skimage_wiener(shape, k_size):
    rng = np.random.default_rng(0)
    img = rng.random((3, *shape))
    psf = rng.random((3, k_size, k_size))
    psf /= psf.sum(axis=(-2, -1), keepdims=True)
    y = _circular_blur(torch.from_numpy(img)[None], torch.from_numpy(psf))
    for reg in ("constant", "laplacian"):
        ours = AF.wiener_deconvolve(y, torch.from_numpy(psf), 0.01, reg, "circular")[0].numpy()
        # skimage: reg=None is its Laplacian; a 1×1 unit impulse gives |reg|² = 1 (constant K).
        sk_reg = np.ones((1, 1)) if reg == "constant" else None
        ref = np.stack(
            [
                restoration.wiener(y[0, c].numpy(), psf[c], 0.01, reg=sk_reg, clip=False)
                for c in range(3)
            ]
        )
        assert np.abs(ours - ref).max() < 1e-4


def test_psf_centre_gives_no_shift():
    psf = torch.zeros(1, 8, 8, dtype=torch.float64)
    psf[0, 4, 4] = 1.0  # centre at K//2 for even K
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    for boundary in AF.BOUNDARIES:
        out = AF.wiener_deconvolve(x, psf, 0.0, boundary=boundary)
        assert torch.allclose(out, x, atol=1e-10)
    assert torch.allclose(AF.linear_model_deconvolve(x, psf, 0.0, iterations=5), x, atol=1e-8)


def test_k_sweep_picks_the_known_optimum(gaussian_psf):
    # White Gaussian signal (variance σx²) + white noise (σn²) under a circular blur: the
    # MSE-optimal constant-K Wiener filter has K = σn² / σx² exactly.
    gen = torch.Generator().manual_seed(0)
    sx, sn = 1.0, 0.1
    x = sx * torch.randn(8, 3, 48, 48, generator=gen, dtype=torch.float64)
    psf = gaussian_psf(7, 1.2)
    y = _circular_blur(x, psf) + sn * torch.randn(x.shape, generator=gen, dtype=torch.float64)
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

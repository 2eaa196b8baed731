"""The Wiener maths (attacks.functional): agreement with scikit-image, PSF centring."""

import numpy as np
import pytest
import torch
from skimage import restoration

from attacks import functional as AF
from attacks.metrics import psnr
from optics.functional import linear_convolve


@pytest.mark.parametrize("shape,k_size", [((64, 64), 7), ((40, 57), 6)])
def test_matches_skimage_wiener(shape, k_size, circular_blur):
    rng = np.random.default_rng(0)
    img = rng.random((3, *shape))
    psf = rng.random((3, k_size, k_size))
    psf /= psf.sum(axis=(-2, -1), keepdims=True)
    y = circular_blur(torch.from_numpy(img)[None], torch.from_numpy(psf))
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


def test_noiseless_small_psf_is_recovered(astronaut64, gaussian_psf, circular_blur):
    x, psf = astronaut64, gaussian_psf(5, 0.7)
    # Circular problem: the textbook Wiener filter inverts it.
    rec = AF.wiener_deconvolve(circular_blur(x, psf), psf, 1e-8, boundary="circular")
    assert float(psnr(rec, x).mean()) > 35
    # The camera's linear (zero-padded) model: exact-model least squares recovers everything,
    # the padded + tapered Wiener filter everything but a thin border.
    y = linear_convolve(x, psf)
    assert float(psnr(AF.linear_model_deconvolve(y, psf, 1e-8, iterations=200), x).mean()) > 35
    rec = AF.wiener_deconvolve(y, psf, 1e-6, boundary="taper")
    assert float(psnr(rec[..., 8:-8, 8:-8], x[..., 8:-8, 8:-8]).mean()) > 35

"""Losses of the learned attackers (pure functions).

RaGAN-LS (relativistic average least-squares GAN, Jolicoeur-Martineau 2018), as DeblurGAN-v2's
``RelativisticDiscLossLS``:

    L_D = ½ (E[(D(x) − E D(G(z)) − 1)²] + E[(D(G(z)) − E D(x) + 1)²])
    L_G = ½ (E[(D(x) − E D(G(z)) + 1)²] + E[(D(G(z)) − E D(x) − 1)²])

Wiener leakage (for training lenses *against* the non-blind attacker): the SSIM that the
attacker's best-K Wiener reconstruction reaches, differentiable in the capture and the PSF.

Content loss: DeblurGAN-v2's 0.5·MSE + 0.006·‖VGG19 conv3_3(x̂) − VGG19 conv3_3(x)‖² when VGG
weights are available, otherwise L1 + (1 − SSIM).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from . import functional as AF
from .metrics import ssim

__all__ = ["content_loss", "ragan_ls_d_loss", "ragan_ls_g_loss", "wiener_leakage"]


def ragan_ls_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator RaGAN-LS loss (scalar); logits of any matching-batch shape."""
    return 0.5 * (
        torch.mean((real_logits - fake_logits.mean() - 1) ** 2)
        + torch.mean((fake_logits - real_logits.mean() + 1) ** 2)
    )


def ragan_ls_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator RaGAN-LS loss (scalar)."""
    return 0.5 * (
        torch.mean((real_logits - fake_logits.mean() + 1) ** 2)
        + torch.mean((fake_logits - real_logits.mean() - 1) ** 2)
    )


def content_loss(
    restored: torch.Tensor,
    target: torch.Tensor,
    features: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Content loss on (B, 3, H, W) images in [0, 1] (scalar).

    ``features`` (VGG19 conv3_3) given: 0.5·MSE + 0.006·MSE(features); else L1 + (1 − SSIM).
    """
    if features is not None:
        return 0.5 * F.mse_loss(restored, target) + 0.006 * F.mse_loss(
            features(restored), features(target)
        )
    return F.l1_loss(restored, target) + (1 - ssim(restored, target)).mean()


def wiener_leakage(
    captured: torch.Tensor,
    original: torch.Tensor,
    psf: torch.Tensor,
    ks: torch.Tensor | list[float],
    to_linear: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
    to_scene: Callable[[torch.Tensor], torch.Tensor] = lambda x: x.clamp(0, 1),
    regulariser: AF.Regulariser = "constant",
) -> tuple[torch.Tensor, torch.Tensor]:
    """How much of the scene the non-blind Wiener attacker recovers: the batch mean of each
    image's best-K SSIM (the per-image oracle K, an upper bound on the attacker who picks one K;
    gradients reach the PSF and the capture through each image's best K, Danskin's theorem).

    The attack is the one ``attacks.nonblind.wiener_attack`` runs (reflect-padded,
    edge-tapered filter on the linearised capture), so a lens trained to lower this value is
    trained against the attack it is evaluated with.

    Args:
        captured, original: (B, C, H, W) in [0, 1]; ``captured`` in the camera's encoding.
        psf: (C, K, K) or (1, K, K), the PSF the attacker knows.
        ks: (N_k,) noise-to-signal ratios the attacker tries.
        to_linear, to_scene: undo / re-apply the camera response (``Response.from_camera``).
        regulariser: "constant" or "laplacian".

    Returns:
        (scalar leakage SSIM, (N_k, B) SSIM of every K on every image, detached).
    """
    scores = AF.wiener_sweep(
        to_linear(captured), psf, ks, lambda est: ssim(to_scene(est), original), regulariser
    )
    return scores.max(dim=0).values.mean(), scores.detach()

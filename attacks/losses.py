"""Losses of the learned attackers (pure functions).

RaGAN-LS (relativistic average least-squares GAN, Jolicoeur-Martineau 2018), as DeblurGAN-v2's
``RelativisticDiscLossLS``:

    L_D = ½ (E[(D(x) − E D(G(z)) − 1)²] + E[(D(G(z)) − E D(x) + 1)²])
    L_G = ½ (E[(D(x) − E D(G(z)) + 1)²] + E[(D(G(z)) − E D(x) − 1)²])

Content loss: DeblurGAN-v2's 0.5·MSE + 0.006·‖VGG19 conv3_3(x̂) − VGG19 conv3_3(x)‖² when VGG
weights are available, otherwise L1 + (1 − SSIM).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .metrics import ssim

__all__ = ["content_loss", "ragan_ls_d_loss", "ragan_ls_g_loss"]


def ragan_ls_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator RaGAN-LS loss (scalar); logits of any matching-batch shape."""
    return 0.5 * (torch.mean((real_logits - fake_logits.mean() - 1) ** 2)
                  + torch.mean((fake_logits - real_logits.mean() + 1) ** 2))


def ragan_ls_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator RaGAN-LS loss (scalar)."""
    return 0.5 * (torch.mean((real_logits - fake_logits.mean() + 1) ** 2)
                  + torch.mean((fake_logits - real_logits.mean() - 1) ** 2))


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
            features(restored), features(target))
    return F.l1_loss(restored, target) + (1 - ssim(restored, target)).mean()

"""Learned (blind) attackers: DeblurGAN-v2-style FPN-MobileNetV2 generator, double-scale
discriminator, U-Net baseline, VGG19 perceptual features. Thin modules; losses live in
``attacks.losses``.

Pretrained weights: ``weights`` is None / "none" (random init), a torchvision enum name (e.g.
"IMAGENET1K_V1", "DEFAULT") or a local state-dict file, loaded by
``captioning.weights.load_weights``
(the one loader: weights that cannot be loaded, e.g. offline, are an error naming the fix).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from captioning.weights import load_weights

__all__ = [
    "FPNMobileNetV2Generator",
    "NLayerDiscriminator",
    "UNet",
    "VGG19Features",
    "WienerUNet",
]

log = logging.getLogger(__name__)


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False)


class _FPNHead(nn.Module):
    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.block0 = nn.Conv2d(in_ch, mid_ch, 3, padding=1, bias=False)
        self.block1 = nn.Conv2d(mid_ch, out_ch, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.block1(F.relu(self.block0(x))))


def _conv_norm_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), _norm(out_ch), nn.ReLU(True))


def _freeze_batchnorm(module: nn.Module) -> None:
    """Replace every BatchNorm2d below ``module`` by a FrozenBatchNorm2d with its statistics
    (always the eval-mode affine map, whatever the training flags say)."""
    from torchvision.ops import FrozenBatchNorm2d

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            _freeze_batchnorm(child)


class FPNMobileNetV2Generator(nn.Module):
    """DeblurGAN-v2 ``fpn_mobilenet`` generator: MobileNetV2 encoder, feature pyramid, heads
    merged at 1/4 scale, residual tanh output (final conv zero-initialised: identity at start).

    Input/output (B, 3, H, W) in [0, 1] (mapped to [−1, 1] inside, as DeblurGAN-v2 trains);
    any H, W (reflect-padded to a multiple of 32 and cropped back).

    ``freeze_bn``: the backbone's BatchNorm layers become FrozenBatchNorm2d (ImageNet
    statistics, or the identity with random init): attacker batches are small, and short
    training would otherwise leave train- and eval-mode statistics far apart.

    A *random* backbone with identity BatchNorm statistics loses ~10× of activation scale per
    stage (measured: the 1/32-scale features have std 1e-7 for inputs of std 0.5), so the
    pyramid's deep levels carry nothing and get no gradient. :meth:`calibrate_batchnorm` sets
    the frozen statistics from a batch of the attacker's own captures (data-dependent
    initialisation, layer by layer), after which every stage is normalised; the attackers call
    it before training when the backbone has no pretrained weights.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        num_filters: int = 64,
        num_filters_fpn: int = 128,
        freeze_bn: bool = True,
    ) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.freeze_bn = freeze_bn
        net = mobilenet_v2()
        self.weights_note = load_weights(net, "mobilenet_v2", weights)
        if freeze_bn:
            _freeze_batchnorm(net)
        f = net.features
        self.enc0, self.enc1, self.enc2 = f[0:2], f[2:4], f[4:7]
        self.enc3, self.enc4 = f[7:11], f[11:16]
        n = num_filters_fpn
        self.lateral4 = nn.Conv2d(160, n, 1, bias=False)
        self.lateral3 = nn.Conv2d(64, n, 1, bias=False)
        self.lateral2 = nn.Conv2d(32, n, 1, bias=False)
        self.lateral1 = nn.Conv2d(24, n, 1, bias=False)
        self.lateral0 = nn.Conv2d(16, n // 2, 1, bias=False)
        self.td1, self.td2, self.td3 = (_conv_norm_relu(n, n) for _ in range(3))
        self.heads = nn.ModuleList(_FPNHead(n, num_filters, num_filters) for _ in range(4))
        self.smooth = _conv_norm_relu(4 * num_filters, num_filters)
        self.smooth2 = _conv_norm_relu(num_filters, num_filters // 2)
        self.final = nn.Conv2d(num_filters // 2, 3, 3, padding=1)
        # Zero-initialised output: the untrained generator is the identity (residual 0), so a
        # short training run starts from the capture instead of from random residuals.
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)
        if n // 2 != num_filters:
            raise ValueError(f"num_filters_fpn ({n}) must be 2 × num_filters ({num_filters})")

    @torch.no_grad()
    def calibrate_batchnorm(self, captures: torch.Tensor) -> int:
        """Set every frozen BatchNorm's statistics to the batch statistics of its input on
        ``captures`` (B, 3, H, W) in [0, 1], in forward order (each layer sees the already
        normalised output of the layers before it). Returns the number of layers set (0 when
        ``freeze_bn`` is off)."""
        from torchvision.ops import FrozenBatchNorm2d

        frozen = [m for m in self.modules() if isinstance(m, FrozenBatchNorm2d)]

        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0]
            module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
            module.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False))
            module.weight.fill_(1.0)
            module.bias.fill_(0.0)

        handles = [m.register_forward_pre_hook(hook) for m in frozen]
        try:
            self(captures)
        finally:
            for handle in handles:
                handle.remove()
        return len(frozen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 32, (-w) % 32
        xin = x * 2 - 1
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            xin = F.pad(xin, (0, pw, 0, ph), mode=mode)
        e0 = self.enc0(xin)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        up = F.interpolate
        m4 = self.lateral4(e4)
        m3 = self.td1(self.lateral3(e3) + up(m4, scale_factor=2, mode="nearest"))
        m2 = self.td2(self.lateral2(e2) + up(m3, scale_factor=2, mode="nearest"))
        m1 = self.td3(self.lateral1(e1) + up(m2, scale_factor=2, mode="nearest"))
        m0 = self.lateral0(e0)
        maps = [head(m) for head, m in zip(self.heads, (m4, m3, m2, m1), strict=True)]
        maps = [
            up(m, scale_factor=s, mode="nearest") if s > 1 else m
            for m, s in zip(maps, (8, 4, 2, 1), strict=True)
        ]
        s = up(self.smooth(torch.cat(maps, dim=1)), scale_factor=2, mode="nearest")
        s = up(self.smooth2(s + m0), scale_factor=2, mode="nearest")
        out = torch.clamp(torch.tanh(self.final(s)) + xin, -1, 1)
        return (out[..., :h, :w] + 1) / 2


class NLayerDiscriminator(nn.Module):
    """PatchGAN (pix2pix / DeblurGAN-v2): k4 s2 convs, ``n_layers`` downsamplings, instance
    norm, LeakyReLU 0.2, no sigmoid. (B, 3, H, W) in [0, 1] → (B, 1, h', w') logits."""

    def __init__(self, n_layers: int = 3, ndf: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True)]
        mult = 1
        for i in range(1, n_layers):
            prev, mult = mult, min(2**i, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 2),
                _norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 2),
            _norm(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, 1, 2),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * 2 - 1)


class _Down(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        # GroupNorm, not BatchNorm: small attacker batches, and no train/eval mismatch.
        groups = math.gcd(8, out_ch)
        self.block = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.GroupNorm(groups, out_ch),
            nn.ReLU(True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            nn.GroupNorm(groups, out_ch),
            nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015; GroupNorm) with ``depth`` poolings, residual output.

    (B, C_in, H, W) in [0, 1] → (B, 3, H, W) in [0, 1], residual on the first 3 input channels
    (``in_channels`` > 3: extra guide channels, e.g. the raw capture beside a Wiener estimate);
    H, W padded to a multiple of 2^depth.
    """

    def __init__(self, base_channels: int = 32, depth: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"U-Net depth must be >= 1, got {depth}")
        if in_channels < 3:
            raise ValueError(f"U-Net in_channels must be >= 3, got {in_channels}")
        chans = [base_channels * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.inc = _Down(in_channels, chans[0])
        self.downs = nn.ModuleList(_Down(chans[i], chans[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.dec = nn.ModuleList(_Down(2 * chans[i], chans[i]) for i in reversed(range(depth)))
        self.out = nn.Conv2d(chans[0], 3, 1)
        nn.init.zeros_(self.out.weight)  # identity at initialisation (residual output)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        xin = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate")
        skips = [self.inc(xin)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up, dec in zip(self.ups, self.dec, strict=True):
            y = dec(torch.cat([up(y), skips.pop()], dim=1))
        return (xin[:, :3] + self.out(y))[..., :h, :w].clamp(0, 1)


class WienerUNet(nn.Module):
    """Non-blind "deep Wiener" attacker (Dong et al., NeurIPS 2020 family): Wiener
    deconvolution with the known PSF and a learned noise-to-signal ratio K, then a U-Net refiner
    on [Wiener estimate, capture] with a residual on the estimate. The refiner's output layer is
    zero-initialised, so the untrained attacker *is* the Wiener attack with K = ``k``.

    The camera response is undone before deconvolution and re-applied after (``response``
    "srgb" / "gamma" / "linear", as ``optics.Sensor``; ``linearize`` False when the camera did
    not linearise its input), exactly as ``attacks.nonblind.wiener_attack`` does.

    ``forward(captures (B, 3, H, W), psf=None)`` → (B, 3, H, W) in [0, 1]; ``psf`` (C or 1, K, K)
    overrides the stored one (the in-loop adversary of a lens that changes every step).
    """

    def __init__(
        self,
        psf: torch.Tensor | None = None,
        k: float = 1e-2,
        response: str = "srgb",
        gamma: float = 2.2,
        linearize: bool = True,
        base_channels: int = 32,
        depth: int = 4,
        psf_shape: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        super().__init__()
        from optics.sensor import Sensor

        if not k > 0:
            raise ValueError(f"Wiener K (noise-to-signal ratio) must be > 0, got {k}")
        if psf is None:
            shape = tuple(psf_shape) if psf_shape else (1, 1, 1)
            psf = torch.zeros(shape)
            psf[..., shape[-2] // 2, shape[-1] // 2] = 1.0  # delta: only undo the response
        self.register_buffer("psf", psf.detach().float().clone())
        self.log_k = nn.Parameter(torch.tensor(math.log(k)))
        self.sensor = Sensor(response=response, gamma=gamma)
        self.linearize = linearize
        self.refiner = UNet(base_channels, depth, in_channels=6)

    @property
    def k(self) -> float:
        return float(self.log_k.detach().exp())

    def wiener(self, captures: torch.Tensor, psf: torch.Tensor | None = None) -> torch.Tensor:
        """The Wiener stage alone: (B, 3, H, W) captures → scene estimates in [0, 1]."""
        from .functional import wiener_deconvolve

        psf = self.psf if psf is None else psf
        est = wiener_deconvolve(
            self.sensor.decode(captures),
            psf.to(captures.dtype),
            self.log_k.exp().to(captures.dtype),
        )
        est = est.clamp(0, 1)
        return self.sensor.encode(est) if self.linearize else est

    def forward(self, captures: torch.Tensor, psf: torch.Tensor | None = None) -> torch.Tensor:
        est = self.wiener(captures, psf)
        return self.refiner(torch.cat([est, captures], dim=1))


class VGG19Features(nn.Module):
    """VGG19 up to conv3_3 (before its ReLU), frozen, ImageNet-normalised input in [0, 1].

    Raises RuntimeError if ``weights`` cannot be loaded (a perceptual loss with random VGG
    weights is meaningless; callers fall back to L1 + SSIM).
    """

    def __init__(self, weights: str | Path) -> None:
        super().__init__()
        from torchvision.models import vgg19

        net = vgg19()
        note = load_weights(net, "vgg19", weights)
        if note == "random":
            raise RuntimeError(
                f"VGG19 weights {weights!r}: a perceptual loss needs pretrained weights"
            )
        self.weights_note = note
        self.features = net.features[:15].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)

    def train(self, mode: bool = True) -> VGG19Features:
        super().train(mode)
        self.features.eval()
        return self

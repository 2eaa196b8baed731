"""Options of the end-to-end model that need more than a type: ranges, choices, the training
K grid, and which of them make the captioner's typed config."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from attacks.attackers import adversary_kinds
from attacks.nonblind import WIENER_K_GRID
from captioning.model import CaptionerConfig
from captioning.optim import DECAYS
from optics.losses import MAX_BAND_CPP

__all__ = [
    "CAPTIONER_FIELDS",
    "DEFAULT_ATTACK_KS",
    "DEFAULT_OTF_BAND_CPP",
    "check_camera_options",
    "check_options",
]

# the training-time Wiener attacker's noise-to-signal ratios (val/wiener_ssim, w_attack): the
# attack's own grid (attacks.nonblind, 4 per decade) at one per decade over 1e-4 … 1, since the
# in-loop attacker runs on every step
DEFAULT_ATTACK_KS = WIENER_K_GRID
# w_otf_band's band: from 1/16 cycles/px, where the SSIM of the band below ends near 0.43 on
# the embedded scenes (docs/results.md, band SSIM), to the FFT grid's corner
DEFAULT_OTF_BAND_CPP = [1 / 16, MAX_BAND_CPP]
# the model options that are CaptionerConfig fields (vocab_size comes from the data)
CAPTIONER_FIELDS = tuple(f.name for f in fields(CaptionerConfig) if f.name != "vocab_size")
NON_NEGATIVE = ("w_dec", "dsr_lambda", "w_distortion", "w_psf_mask", "w_attack", "lr_camera",
                "lr_encoder", "lr_decoder", "weight_decay", "warmup_steps", "w_scene_labels",
                "w_adversary", "w_sampling", "psf_mask_radius_px", "w_otf_band")  # fmt: skip


def check_options(options: Mapping[str, Any]) -> None:
    """Refuse bad model options by name before anything is built (``ValueError``)."""
    for name in NON_NEGATIVE:
        value = options[name]
        if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
            raise ValueError(f"model.{name} must be a finite number >= 0, got {value!r}")
    ks = options["attack_ks"]
    if ks is not None and (
        len(ks) == 0 or not all(isinstance(k, (int, float)) and k > 0 for k in ks)
    ):
        raise ValueError(
            f"model.attack_ks must be a non-empty list of noise-to-signal ratios > 0, got {ks!r}"
        )
    band = options["otf_band_cpp"]
    if band is not None and not (
        len(band) == 2
        and all(isinstance(f, (int, float)) and math.isfinite(f) for f in band)
        and 0 <= band[0] < band[1] <= MAX_BAND_CPP
    ):
        raise ValueError(
            f"model.otf_band_cpp must be [low, high] cycles/px with 0 <= low < high <= "
            f"{MAX_BAND_CPP:.3f}, got {band!r} (e.g. [0.0625, 0.5])"
        )
    if options["scheduler"] not in DECAYS:
        raise ValueError(
            f"model.scheduler must be 'cosine' or 'constant', got {options['scheduler']!r}"
        )
    if options["vocab_size"] < 5:
        raise ValueError(
            f"model.vocab_size={options['vocab_size']}: it is linked from the data module's "
            "vocabulary; build the model through train.py (LightningCLI) or pass the vocabulary "
            "size"
        )
    adversaries = adversary_kinds()  # "none" and the registry's in-loop attackers
    if options["adversary"] not in adversaries:
        raise ValueError(
            f"model.adversary must be one of {list(adversaries)}, got {options['adversary']!r}"
        )
    for name, least in (("adversary_pretrain_epochs", 0), ("adversary_pretrain_patience", 1)):
        value = options[name]
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= least):
            raise ValueError(f"model.{name} must be a whole number >= {least}, got {value!r}")
    if options["adversary"] == "none" and options["adversary_pretrain_epochs"] > 0:
        raise ValueError(
            "model.adversary_pretrain_epochs > 0 pre-trains the in-loop attacker: set "
            f"model.adversary to one of {list(adversaries[1:])}, or the epochs to 0"
        )
    if options["adversary"] == "none" and options["w_adversary"] > 0:
        raise ValueError(
            "model.w_adversary > 0 needs an attacker: set model.adversary to one of "
            f"{list(adversaries[1:])}"
        )


def check_camera_options(options: Mapping[str, Any], psf_size_px: int, has_lens: bool) -> None:
    """Refuse model options that contradict the camera's, naming both (``ValueError``)."""
    radius, weight = options["psf_mask_radius_px"], options["w_psf_mask"]
    # every pixel of the K×K window lies within √2·K/2 of its centre pixel K//2: a larger mask
    # covers the whole PSF and the mask loss is silently 0
    farthest_px = math.hypot(psf_size_px // 2, psf_size_px // 2)
    if has_lens and weight > 0 and radius >= farthest_px:
        raise ValueError(
            f"model.psf_mask_radius_px={radius:g} covers the whole {psf_size_px}-px PSF "
            f"(model.camera.lens.psf_size_px={psf_size_px}), so the mask loss would always be 0: "
            f"set it below {farthest_px:.0f} (published: 32 of 256), or model.w_psf_mask 0"
        )

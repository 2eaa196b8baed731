"""The published figures of the privacy-lens paper (Arguello et al.), typed once.

Used by the attack report (SSIM of the privacy lens's captures and attacks) and by the caption
comparison table (``evaluate.py``: BLEU / METEOR / CIDEr-D per camera, COCO Karpathy test).
"""

from __future__ import annotations

__all__ = ["PUBLISHED_COCO", "PUBLISHED_PRIVACY_SSIM", "published_ssim_text"]

# SSIM against the originals (mean, std), COCO 256², privacy lens.
PUBLISHED_PRIVACY_SSIM: dict[str, tuple[float, float]] = {
    "captured": (0.48, 0.12),
    "wiener": (0.38, 0.10),
    "deblurgan": (0.40, 0.11),
}

# Caption metrics (percent) per camera, COCO Karpathy test split.
PUBLISHED_COCO: dict[str, dict[str, float]] = {
    "privacy": {"BLEU-1": 68.9, "BLEU-4": 29.0, "METEOR": 26.8, "CIDEr-D": 89.0},
    "defocus": {"BLEU-1": 67.3, "BLEU-4": 25.5, "METEOR": 26.8, "CIDEr-D": 81.1},
    "lowres": {"BLEU-1": 61.6, "BLEU-4": 19.9, "METEOR": 23.3, "CIDEr-D": 58.8},
    "ideal": {"BLEU-1": 73.2, "BLEU-4": 33.3, "METEOR": 29.0, "CIDEr-D": 101.2},
}


def published_ssim_text() -> dict[str, str]:
    """{"captured": "0.48 ± 0.12", ...}: the SSIM figures as the reports print them."""
    return {k: f"{m:.2f} ± {s:.2f}" for k, (m, s) in PUBLISHED_PRIVACY_SSIM.items()}

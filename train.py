"""privcam end-to-end trainer: camera (optics) → ResNet encoder → top-down decoder, one model.

    python train.py fit --config configs/coco.yaml --config configs/coco_privacy.yaml
    python train.py fit --config configs/demo.yaml [--config configs/adversary.yaml]
    python train.py fit --config configs/coco.yaml --config configs/coco_privacy.yaml \
        --ckpt_path last                                                        # resume
    python train.py test --config configs/coco.yaml --config configs/coco_privacy.yaml \
        --ckpt_path runs/…/best.ckpt
    python train.py fit --config configs/demo.yaml --model.camera.preset ideal  # captioner alone
    python train.py fit --config configs/demo.yaml --model.camera.preset ideal --model.blind true

Loss: L = w_dec·(L_ce + λ·L_dsr) + w_p·L_p + w_H·L_H (published 0.4, λ = 1, 6, 30)
      [+ w_attack·L_W, the non-blind Wiener attacker's SSIM; off by default].

The work lives in ``captioning``: ``datamodule`` (data), ``privacy_captioner`` (the model and
its losses), ``callbacks``, ``checkpoints``, ``optim`` (LR schedule) and ``train_cli`` (this
command line); the names below are re-exported for scripts, benchmarks and tests.
"""

from __future__ import annotations

from captioning.datamodule import CaptionDataModule, available_cpus
from endtoend.callbacks import EpochProgress, NonFiniteLossStop, non_finite_terms
from endtoend.checkpoints import load_captioner_weights
from endtoend.eval_outputs import image_quality
from endtoend.privacy_captioner import DEFAULT_ATTACK_KS, PrivacyCaptioner
from endtoend.train_cli import PrivcamCLI, cli_main, main

__all__ = [
    "DEFAULT_ATTACK_KS",
    "CaptionDataModule",
    "EpochProgress",
    "NonFiniteLossStop",
    "PrivacyCaptioner",
    "PrivcamCLI",
    "available_cpus",
    "cli_main",
    "image_quality",
    "load_captioner_weights",
    "main",
    "non_finite_terms",
]

if __name__ == "__main__":
    raise SystemExit(main())

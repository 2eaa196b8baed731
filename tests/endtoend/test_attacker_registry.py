"""The end-to-end layer reads the learned attackers from ``attacks.attackers.ATTACKERS``: the
study's strength attacker, study.md's columns and targets, and ``model.adversary``'s choices.
An extra entry (a second U-Net under another name) reaches all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from attacks.attackers import ATTACKERS, AttackerSpec
from endtoend.study import StudySettings

IDEAL = {"preset": "ideal", "read_noise_std": 0.0, "quantize_bits": None}


def test_the_study_takes_a_registered_strength_attacker(monkeypatch):
    with pytest.raises(ValueError, match=r"--strength-attacker 'tiny_unet': one of \['deblurgan'"):
        StudySettings(strength_attacker="tiny_unet").check()
    spec = AttackerSpec("tiny_unet", "Tiny U-Net", "tiny U-Net", "attacks.learned.UNetAttacker", "")
    monkeypatch.setitem(ATTACKERS, "tiny_unet", spec)
    StudySettings(strength_attacker="tiny_unet").check()


def test_study_md_has_its_column_and_counts_it_as_a_fresh_attacker(extra_attacker, monkeypatch):
    from endtoend.study_report import study_markdown

    monkeypatch.chdir(Path(__file__).parents[2])

    def row(name, ssim):
        return {"name": name, "ssim": {"mean": ssim}, "psnr": {"mean": 20.0},
                "reid": {"top1": 0.05, "chance": 0.05}}  # fmt: skip

    rows = [row("captured", 0.36), row("unet", 0.44), row("tiny_unet", 0.47), row("in_loop", 0.4)]
    results = {"adversary": ("privacy (adversary)", {"rows": rows, "strength": []})}
    captions = {"ideal": {"grounding_f1": 0.45}, "privacy (adversary)": {"grounding_f1": 0.40}}
    text = study_markdown(StudySettings(), captions, results, "# Trade-off\n", {})
    header = next(ln for ln in text.splitlines() if ln.startswith("| lens | re-ID chance |"))
    assert header.endswith("| U-Net | tiny U-Net | in-loop (not fresh) |"), header
    assert "best fresh learned attacker SSIM 0.470 (tiny_unet)" in text


def test_model_adversary_takes_a_registered_in_loop_attacker(extra_attacker):
    from attacks.models import UNet
    from endtoend.privacy_captioner import PrivacyCaptioner

    model = PrivacyCaptioner(vocab_size=12, camera=IDEAL, backbone="resnet18", weights=None,
                             embed_dim=8, hidden_dim=8, attention_dim=4, adversary="tiny_unet",
                             adversary_channels=4, adversary_depth=2)  # fmt: skip
    assert model._adversary.kind == "tiny_unet" and isinstance(model._adversary.net, UNet)
    with pytest.raises(ValueError, match=r"model.adversary must be one of \[.*'tiny_unet'\]"):
        PrivacyCaptioner(vocab_size=12, camera=IDEAL, backbone="resnet18", adversary="gan")

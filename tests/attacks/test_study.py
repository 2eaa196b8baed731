"""attacks.study: the settings check and the report's tables and target checks (the full run
on tiny data is tests/e2e/test_study.py)."""

from __future__ import annotations

import pytest

from attacks.study import StudySettings, study_markdown


def _row(name, ssim, reid=0.05, converged=None):
    row = {"name": name, "ssim": {"mean": ssim}, "psnr": {"mean": 20.0},
           "reid": {"top1": reid, "chance": 0.05}}  # fmt: skip
    if converged is not None:
        row["converged"] = converged
    return row


def _report(adversary_rows, f1=0.40):
    captions = {
        "ideal": {"grounding_f1": 0.45, "CIDEr-D": 120.0},
        "blind": {"grounding_f1": 0.17, "CIDEr-D": 38.0},
        "privacy (adversary)": {"grounding_f1": f1, "CIDEr-D": 140.0},
    }
    results = {
        "ideal": ("ideal", {"rows": [_row("original", 1.0, 1.0), _row("captured", 0.97, 1.0)]}),
        "adversary": ("privacy (adversary)", {"rows": adversary_rows, "strength": []}),
    }
    return study_markdown(StudySettings(), captions, results, "# Trade-off\n", {"lens": 1.0})


def test_targets_count_only_converged_fresh_attackers_and_all_reid():
    text = _report([
        _row("original", 1.0, 1.0), _row("captured", 0.36),
        _row("deblurgan", 0.60, converged=False),  # worse than the identity: not a threat
        _row("unet", 0.44, reid=0.08, converged=True), _row("wiener_unet", 0.43),
        _row("richardson_lucy", 0.40, reid=0.20), _row("in_loop", 0.47),
    ])  # fmt: skip
    assert "best fresh learned attacker SSIM 0.440 (unet); target ≤ 0.45: **met**" in text
    assert "re-ID over every attack that counts 20 % (chance 5 %, +15 points)" in text
    assert "5 points: **not met**" in text
    assert "grounding F1 0.400 = 89 % of the ideal camera's 0.450" in text
    assert "0.600 / 20.0 / 5 % †" in text  # shown, flagged, not counted
    header = next(ln for ln in text.splitlines() if ln.startswith("| lens | re-ID chance |"))
    assert header.endswith("| Wiener+U-Net | in-loop (not fresh) |"), header


def test_targets_not_met_are_said():
    text = _report([_row("captured", 0.36), _row("wiener_unet", 0.52)], f1=0.30)
    assert "SSIM 0.520 (wiener_unet); target ≤ 0.45: **not met**" in text
    assert "= 67 % of the ideal camera's" in text and "80 %: **not met**" in text
    assert "| privacy (adversary) | 5 % | 0.360 / 20.0 / 5 % | 0.520 / 20.0 / 5 % |" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lenses": ("published", "mystery")}, "--lenses"),
        ({"lenses": ()}, "--lenses"),
        ({"config": "nowhere.yaml"}, "--config nowhere.yaml"),
        ({"init_from": "nowhere.ckpt"}, "--init-from nowhere.ckpt"),
        ({"attacks": "wienr"}, "wienr"),
        ({"strength_curve": "1,all"}, "strength curve point"),
        ({"strength_attacker": "wiener"}, "--strength-attacker"),
        ({"max_images": 3}, "--max-images 3"),
    ],
)
def test_bad_settings_are_refused_by_name(change, message):
    settings = StudySettings(**change)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        settings.check()

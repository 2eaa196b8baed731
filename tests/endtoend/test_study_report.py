"""endtoend.study_report: study.md's tables and the targets checked from the results."""

from __future__ import annotations

from pathlib import Path

from endtoend.study import StudySettings
from endtoend.study_report import study_markdown


def _row(name, ssim, reid=0.05, converged=None):
    row = {"name": name, "ssim": {"mean": ssim}, "psnr": {"mean": 20.0},
           "reid": {"top1": reid, "chance": 0.05}}  # fmt: skip
    if converged is not None:
        row["converged"] = converged
    return row


def _report(adversary_rows, f1=0.40, phase_step=1.5):
    captions = {
        "ideal": {"grounding_f1": 0.45, "CIDEr-D": 120.0, "shape_f1": 0.5},
        "blind": {"grounding_f1": 0.17, "CIDEr-D": 38.0},
        "privacy (adversary)": {"grounding_f1": f1, "CIDEr-D": 140.0},
    }
    results = {
        "ideal": ("ideal", {"rows": [_row("original", 1.0, 1.0), _row("captured", 0.97, 1.0)]}),
        "adversary": (
            "privacy (adversary)",
            {
                "rows": adversary_rows,
                "strength": [],
                "settings": {"max_phase_step_rad": phase_step},
            },
        ),
    }
    return study_markdown(StudySettings(), captions, results, "# Trade-off\n", {"lens": 1.0})


def test_targets_count_only_converged_fresh_attackers_and_all_reid(monkeypatch):
    monkeypatch.chdir(Path(__file__).parents[2])  # the checkout's root, as `make study`
    text = _report([
        _row("original", 1.0, 1.0), _row("captured", 0.36),
        _row("deblurgan", 0.60, converged=False),  # worse than the identity: not a threat
        _row("unet", 0.44, reid=0.08, converged=True), _row("wiener_unet", 0.43),
        _row("richardson_lucy", 0.40, reid=0.20), _row("in_loop", 0.47),
    ])  # fmt: skip
    assert "best fresh learned attacker SSIM 0.440 (unet); target ≤ 0.45: **met**" in text
    assert "the attacks that count: richardson_lucy 20.0 % (chance 5.0 %, +15.0 points)" in text
    assert "5 points: **not met**" in text
    assert "grounding F1 0.400 = 89 % of the ideal camera's 0.450" in text
    assert "| camera | grounding F1 | F1 / ideal | shape F1 | CIDEr-D |" in text
    assert "| ideal | 0.450 | 100 % | 0.500 | 120.0 |" in text
    assert "0.600 / 20.0 / 5 % †" in text  # shown, flagged, not counted
    header = next(ln for ln in text.splitlines() if ln.startswith("| lens | re-ID chance |"))
    assert "Base config `configs/demo.yaml`" in text  # the default, not this machine's path
    assert header.endswith("| Wiener+U-Net | in-loop (not fresh) |"), header


def test_reid_is_judged_against_each_attacks_own_chance():
    small_gallery = _row("richardson_lucy", 0.40, reid=0.09)
    small_gallery["reid"]["chance"] = 0.09  # 11 reference faces: at chance
    text = _report([_row("captured", 0.36, reid=0.02), small_gallery, _row("unet", 0.44, 0.08)])
    assert "count: unet 8.0 % (chance 5.0 %, +3.0 points)" in text
    assert "5 points: **met**" in text


def test_targets_not_met_are_said():
    text = _report([_row("captured", 0.36), _row("wiener_unet", 0.52)], f1=0.30)
    assert "SSIM 0.520 (wiener_unet); target ≤ 0.45: **not met**" in text
    assert "= 67 % of the ideal camera's" in text and "80 %: **not met**" in text
    assert "| privacy (adversary) | 5 % | 0.360 / 20.0 / 5 % | 0.520 / 20.0 / 5 % |" in text


def test_an_aliased_lens_is_marked_and_cannot_meet_the_targets():
    rows = [_row("captured", 0.36), _row("unet", 0.40, converged=True)]
    assert "aliases" not in _report(rows)
    text = _report(rows, phase_step=3.81)
    assert "| privacy (adversary) ‡ |" in text
    assert "privacy (adversary) (3.81 rad)" in text
    assert "lens aliases on its pupil grid (3.81 rad > π)" in text.split("## Targets")[1]


def test_targets_are_checked_on_each_adversarial_lens():
    captions = {
        "ideal": {"grounding_f1": 0.45},
        "privacy (adversary)": {"grounding_f1": 0.46},
        "privacy (adversary_wide)": {"grounding_f1": 0.49},
    }
    results = {
        "adversary": ("privacy (adversary)", {"rows": [_row("unet", 0.55, converged=True)]}),
        "adversary_wide": (
            "privacy (adversary_wide)",
            {"rows": [_row("unet", 0.40, converged=True)]},
        ),
    }
    text = study_markdown(StudySettings(), captions, results, "# Trade-off\n", {})
    targets = text.split("## Targets", 1)[1]
    narrow, wide = targets.split("`privacy (adversary_wide)`:")
    assert "`privacy (adversary)`:" in narrow and "SSIM 0.550 (unet)" in narrow
    assert "**not met**" in narrow.split("re-ID")[0]
    assert "SSIM 0.400 (unet); target ≤ 0.45: **met**" in wide
    assert "(adversary_wide: 2×)" in text
    assert "2×" not in study_markdown(StudySettings(lenses=("adversary",)), captions, {}, "", {})


def test_an_attack_below_the_capture_is_marked():
    below = {**_row("unsupervised_wiener", 0.04), "beats_identity": False, "identity_ssim": 0.33}
    text = _report(
        [_row("captured", 0.33), below, {**_row("wiener", 0.35), "beats_identity": True}]
    )
    assert "0.040 / 20.0 / 5 % ↓" in text and "0.350 / 20.0 / 5 % |" in text
    assert "↓ = below the capture itself" in text


def test_a_lower_bound_under_the_target_does_not_meet_it():
    """A best fresh attacker under 0.45 that was not trained to saturation establishes
    nothing; saturated, the same figure meets the target; every lower bound carries ≥."""
    rows = [_row("original", 1.0, 1.0), _row("captured", 0.36)]
    bounded = {**_row("unet", 0.40, converged=True), "lower_bound": True}
    text = _report([*rows, bounded])
    assert (
        "best fresh learned attacker SSIM ≥ 0.400 (unet); target ≤ 0.45: **not established**"
        in text
    )
    assert "≥ 0.400 / 20.0 / 5 %" in text
    saturated = {**_row("unet", 0.40, converged=True), "lower_bound": False}
    assert "SSIM 0.400 (unet); target ≤ 0.45: **met**" in _report([*rows, saturated])
    above = {**_row("unet", 0.50, converged=True), "lower_bound": True}
    assert "SSIM ≥ 0.500 (unet); target ≤ 0.45: **not met**" in _report([*rows, above])


def test_at_saturation_every_lens_is_judged_by_shape_f1_and_the_exact_model_wiener():
    """--saturate: every privacy lens (not the references) against the saturation targets:
    the exact-model Wiener counts beside the learned attackers, re-ID within 2 points of
    chance, shape F1 against the ideal camera's."""
    captions = {
        "ideal": {"grounding_f1": 0.80, "shape_f1": 0.90},
        "privacy (published)": {"grounding_f1": 0.70, "shape_f1": 0.75},
        "privacy (wiener)": {"grounding_f1": 0.70, "shape_f1": 0.60},
        "defocus": {"grounding_f1": 0.70, "shape_f1": 0.70},
    }
    sat = {"converged": True, "lower_bound": False}
    results = {
        "published": ("privacy (published)", {"rows": [
            {**_row("unet", 0.40, reid=0.06), **sat}, _row("wiener_exact", 0.44, reid=0.06)]}),
        "wiener": ("privacy (wiener)", {"rows": [
            {**_row("unet", 0.40), **sat}, _row("wiener_exact", 0.47, reid=0.08)]}),
        "defocus": ("defocus", {"rows": [{**_row("unet", 0.80), **sat}]}),
    }  # fmt: skip
    s = StudySettings(saturate=True, lenses=("published", "wiener"))
    targets = study_markdown(s, captions, results, "", {}).split("## Targets at saturation")[1]
    published, wiener = targets.split("`privacy (wiener)`:")
    assert "at saturation (learned, exact-model Wiener) SSIM 0.440 (wiener_exact)" in published
    assert "target ≤ 0.45: **met**" in published
    assert "+1.0 points); target within 2 points: **met**" in published
    assert "shape F1 0.750 = 83 % of the ideal camera's 0.900" in published
    assert "SSIM 0.470 (wiener_exact); target ≤ 0.45: **not met**" in wiener
    assert "+3.0 points); target within 2 points: **not met**" in wiener
    assert "shape F1 0.600 = 67 %" in wiener and "`defocus`" not in targets

"""``study.md`` of the privacy study (``endtoend.study``): utility per camera, lens × attack
(SSIM / PSNR / re-ID against chance), strength curves, the issue's targets checked, frontier."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attacks.attackers import ATTACKERS

from .tradeoff import top_reid

if TYPE_CHECKING:  # the settings live with the study; this module only reads them
    from .study import StudySettings

__all__ = [
    "ADVERSARIAL_LENSES",
    "LENS_EPOCH_FACTOR",
    "SATURATION_TARGETS",
    "TARGETS",
    "study_markdown",
]

# the targets of the learned-attackers issue, checked (not assumed) in study.md
TARGETS = {"learned_ssim_max": 0.45, "reid_points_over_chance": 5.0, "f1_share_of_ideal": 0.80}
# the targets at saturation (docs/evaluation.md): on every privacy lens, the strongest attack
# whose figure is no budget choice (each learned attacker trained to saturation, and the
# exact-model Wiener, which trains nothing), face re-ID within 2 points of chance, shape F1
# (what blur takes first) kept at 80 % of the ideal camera's
SATURATION_TARGETS = {"learned_ssim_max": 0.45, "reid_points_over_chance": 2.0,
                      "f1_share_of_ideal": 0.80}  # fmt: skip
# the study's lens variants trained min–max, on which study.md checks those targets
ADVERSARIAL_LENSES = ("adversary", "adversary_wide", "adversary_band")
# lens variant -> multiple of lens_epochs it trains (the wide support needs the longer schedule)
LENS_EPOCH_FACTOR = {"adversary_wide": 2}


def _shown(path: str) -> str:
    """``path`` relative to the working directory when inside it (the default config is
    absolute so the study runs from anywhere; the report should not print this machine's)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def _cell(row: Mapping[str, Any] | None, chance: float = math.nan) -> str:
    """ "SSIM / PSNR dB / re-ID %" of one attack row ("–" when not run; † when the learned
    attacker did not beat the identity on its validation pairs; the row's own re-ID chance
    when it differs from the lens's ``chance``, as for the references on fewer images)."""
    if row is None:
        return "–"
    ssim = (row.get("ssim") or {}).get("mean", math.nan)
    psnr = (row.get("psnr") or {}).get("mean", math.nan)
    reid = row.get("reid") or {}
    text = f"{'≥ ' if row.get('lower_bound') else ''}{ssim:.3f} / {psnr:.1f} / "
    text += "–" if reid.get("top1") is None else f"{100 * reid['top1']:.0f} %"
    if reid.get("chance") is not None and not math.isclose(reid["chance"], chance):
        text += f" (chance {100 * reid['chance']:.0f} %)"
    text += " ↓" if row.get("beats_identity") is False else ""
    return text + (" †" if row.get("converged") is False else "")


# study.md columns: attack row names of attack_results.json, in the order (the learned
# attackers' from their AttackerSpec.column, between these and the in-loop row)
_DECONVOLUTION_COLUMNS = {
    "captured": "identity (capture)",
    "wiener": "Wiener (learned K)",
    "wiener_laplacian": "Wiener (Laplacian)",
    "wiener_oracle": "oracle Wiener",
    "wiener_exact": "exact-model Wiener",
    "unsupervised_wiener": "unsup. Wiener",
    "richardson_lucy": "R–L",
}


def _columns() -> dict[str, str]:
    """study.md's attack columns: row name → header, in order."""
    learned = {name: spec.column for name, spec in ATTACKERS.items()}
    return {**_DECONVOLUTION_COLUMNS, **learned, "in_loop": "in-loop (not fresh)"}


def _reid_chance(results: Mapping[str, Any]) -> float:
    chances = [(r.get("reid") or {}).get("chance") for r in results.get("rows", [])]
    return next((float(c) for c in chances if c is not None), math.nan)


def _targets(
    captions: Mapping[str, Mapping[str, Any]],
    attack_results: Mapping[str, tuple[str, dict]],
    lenses: tuple[str, ...] = ADVERSARIAL_LENSES,
    saturated: bool = False,
) -> list[str]:
    """The targets on each of ``lenses`` that the study ran (its labels in ``attack_results``),
    computed from the results: :data:`SATURATION_TARGETS` when ``saturated``, else
    :data:`TARGETS`."""
    lenses = tuple(lens for lens in lenses if lens in attack_results)
    if not lenses:
        return ["(no adversary lens in this study: the targets are about it)"]
    lines = []
    for lens in lenses:
        name, results = attack_results[lens]
        lines += ["", f"`{name}`:", "", *_lens_targets(captions, name, results, saturated)]
    return lines[1:]


def _lens_targets(
    captions: Mapping[str, Mapping[str, Any]],
    name: str,
    results: Mapping[str, Any],
    saturated: bool = False,
) -> list[str]:
    """The targets' lines for one lens (``name``: its camera name in ``captions``)."""
    targets = SATURATION_TARGETS if saturated else TARGETS
    rows = {r["name"]: r for r in results.get("rows", [])}
    judged = (*ATTACKERS, "wiener_exact") if saturated else tuple(ATTACKERS)
    fresh = [rows[k] for k in judged if k in rows and rows[k].get("converged") is not False]
    counted = [r for k, r in rows.items() if k != "original" and r.get("converged") is not False]
    best = max(fresh, key=lambda r: r["ssim"]["mean"], default=None)
    top = top_reid(counted)  # against each attack's own chance (galleries differ in size)
    utility = "shape_f1" if saturated else "grounding_f1"
    f1 = captions.get(name, {}).get(utility, math.nan)
    ideal_f1 = captions.get("ideal", {}).get(utility, math.nan)
    lines = []
    step = (results.get("settings") or {}).get("max_phase_step_rad")
    if step is not None and step > math.pi:
        lines.append(
            f"- **the lens aliases on its pupil grid ({step:.2f} rad > π): the figures below "
            "are of a PSF this lens would not make, so no target can be met by it**"
        )
    attacker = (
        "best attacker at saturation (learned, exact-model Wiener)"
        if saturated
        else "best fresh learned attacker"
    )
    if best is None:
        lines.append(f"- {attacker}: none converged (nothing to judge)")
    else:
        ok = best["ssim"]["mean"] <= targets["learned_ssim_max"]
        bounded = [r["name"] for r in fresh if r.get("lower_bound")]
        verdict = "**met**" if ok else "**not met**"
        if ok and bounded:  # a lower bound under the target says nothing about the target
            verdict = (
                f"**not established**: {', '.join(bounded)} not trained to saturation, so "
                "this is a lower bound (run the study with --saturate)"
            )
        lines.append(
            f"- {attacker} SSIM {'≥ ' if bounded else ''}"
            f"{best['ssim']['mean']:.3f} ({best['name']}); target ≤ "
            f"{targets['learned_ssim_max']}: {verdict}"
        )
    if top is None:
        lines.append("- re-ID: no attack with faces to re-identify")
    else:
        reid, chance = top["reid"]["top1"], top["reid"]["chance"]
        over = 100 * (reid - chance)
        lines.append(
            f"- highest re-ID above chance among the attacks that count: {top['name']} "
            f"{100 * reid:.1f} % (chance {100 * chance:.1f} %, {over:+.1f} points); target "
            f"within {targets['reid_points_over_chance']:.0f} points: "
            + ("**met**" if over <= targets["reid_points_over_chance"] else "**not met**")
        )
    share = f1 / ideal_f1 if ideal_f1 else math.nan
    lines.append(
        f"- {utility.replace('_f1', ' F1')} {f1:.3f} = {100 * share:.0f} % of the ideal "
        f"camera's {ideal_f1:.3f}; target ≥ {100 * targets['f1_share_of_ideal']:.0f} %: "
        + ("**met**" if share >= targets["f1_share_of_ideal"] else "**not met**")
    )
    return lines


def study_markdown(
    s: StudySettings,
    captions: Mapping[str, Mapping[str, Any]],
    attack_results: Mapping[str, tuple[str, dict]],
    tradeoff_md: str,
    timings: Mapping[str, float],
) -> str:
    """``study.md``: utility per camera, lens × attack, strength curves, targets, frontier."""
    lines = [
        "# Privacy study: lenses against fresh attackers",
        "",
        f"Base config `{_shown(s.config)}`; each privacy lens trained {s.lens_epochs} epoch(s)"
        + "".join(f" ({k}: {f}×)" for k, f in LENS_EPOCH_FACTOR.items() if k in s.lenses)
        + " from the ideal camera's captioner. Captions: test split, beam "
        f"{s.beam}. Attacks: {s.max_images} embedded images split 2:1 into attacker-train and "
        f"test pairs; learned attackers trained fresh on the frozen lens for {s.epochs} "
        "epochs"
        + "".join(f" ({k}: {f * s.epochs})" for k, f in LENS_EPOCH_FACTOR.items() if k in s.lenses)
        + " (best validation checkpoint). Cells: SSIM / PSNR (dB) / face re-ID top-1; "
        "† = the attacker never beat the identity on its validation pairs (not a threat, "
        "left out of the frontier); ↓ = below the capture itself on the same images (the "
        "attack recovers less than doing nothing); ≥ = a lower bound: the learned attacker "
        "was not trained to saturation ("
        + (
            f"doubling attacker-train pairs from {s.saturate_start} up to {s.saturate_cap}, "
            f"each level to a {s.patience}-epoch plateau, did not stop"
            if s.saturate
            else "one budget; `--saturate` trains each to saturation"
        )
        + ").",
        "",
        "## Utility",
        "",
        "| camera | grounding F1 | F1 / ideal | shape F1 | CIDEr-D | shape P | colour R |",
        "|---|---|---|---|---|---|---|",
    ]
    ideal_f1 = captions.get("ideal", {}).get("grounding_f1", math.nan)
    for name, m in captions.items():
        f1 = m.get("grounding_f1", math.nan)
        share = f"{100 * f1 / ideal_f1:.0f} %" if ideal_f1 else "–"
        lines.append(
            f"| {name} | {f1:.3f} | {share} | {m.get('shape_f1', math.nan):.3f} | "
            f"{m.get('CIDEr-D', math.nan):.1f} | "
            f"{m.get('shape_precision', math.nan):.3f} | {m.get('colour_recall', math.nan):.3f} |"
        )
    run_rows = [{r["name"]: r for r in res.get("rows", [])} for _, res in attack_results.values()]
    columns = _columns()
    present = [k for k in columns if any(k in rows for rows in run_rows)]
    lines += [
        "",
        "## Attacks (SSIM / PSNR dB / re-ID)",
        "",
        "| lens | re-ID chance | " + " | ".join(columns[k] for k in present) + " |",
        "|---|---|" + "---|" * len(present),
    ]
    aliased = []
    for (name, res), rows in zip(attack_results.values(), run_rows, strict=True):
        chance = _reid_chance(res)
        cells = " | ".join(_cell(rows.get(k), chance) for k in present)
        step = (res.get("settings") or {}).get("max_phase_step_rad")
        if step is not None and step > math.pi:
            aliased.append(f"{name} ({step:.2f} rad)")
            name += " ‡"
        lines.append(f"| {name} | {100 * chance:.0f} % | {cells} |")
    if aliased:
        lines += [
            "",
            "‡ **the lens aliases on its pupil grid** (phase step > π between neighbouring "
            f"samples: {', '.join(aliased)}): its simulated PSF is not physical, so its row "
            "is no privacy result.",
        ]
    lines += ["", "## Strength curves (attacker-train pairs → test SSIM)", ""]
    for name, res in attack_results.values():
        for kind, info in (res.get("learned") or {}).items():
            curve = info.get("saturation")
            if curve:
                steps = ", ".join(
                    f"{p['pairs']} → {p['ssim']['mean']:.3f} ({p['epochs']} epochs)"
                    for p in curve["points"]
                )
                lines.append(f"- {name}, {kind} (to saturation): {steps}: {curve['status']}")
        for p in res.get("strength", []):
            flag = "" if p.get("converged") is not False else " †"
            lines.append(
                f"- {name}, {p['attacker']}: {p['pairs']} pairs → "
                f"{p['ssim']['mean']:.3f}{flag} (best epoch {p['best_epoch']}/{p['epochs']})"
            )
    wall = ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
    if s.saturate:  # at saturation every privacy lens is judged (docs/evaluation.md)
        lines += ["", "## Targets at saturation (every privacy lens)", ""]
        lines += _targets(captions, attack_results, tuple(s.lenses), saturated=True)
    else:
        lines += ["", "## Targets (adversarially trained lenses)", ""]
        lines += _targets(captions, attack_results)
    lines += ["", tradeoff_md.replace("# ", "## ", 1), ""]
    wall = f"Wall time of this run (s; a reused stage takes ~0): {wall}"
    lines += ["![privacy–utility trade-off](tradeoff.png)", "", wall, ""]
    return "\n".join(lines)

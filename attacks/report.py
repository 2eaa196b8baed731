"""The attack report: ``attack_report.md``, ``attack_results.json`` and the figures
(``attack_grid.png``: original / capture / each reconstruction; ``attack_strength.png``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .published import published_ssim_text

__all__ = ["grid_figure", "strength_figure", "write_report"]


def strength_figure(
    path: Path, points: list[dict[str, Any]], captured: dict[str, Any]
) -> Path | None:
    """Two panels: test SSIM against attacker-train pairs (mean ± standard error over the test
    images; the identity as a line), and each point's validation SSIM gain over the identity
    per epoch (the validation parts differ between points; the gain is comparable)."""
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    attackers = list(dict.fromkeys(p["attacker"] for p in points))  # one line each, in order
    for kind in attackers:
        mine = [p for p in points if p["attacker"] == kind]
        sem = [p["ssim"]["std"] / max(p["ssim"]["n"], 1) ** 0.5 for p in mine]
        a.errorbar(
            [p["pairs"] for p in mine],
            [p["ssim"]["mean"] for p in mine],
            yerr=sem,
            marker="o",
            capsize=3,
            label=kind,
        )
    a.axhline(captured["ssim"]["mean"], color="grey", ls="--", label="captured (no attack)")
    a.set_xscale("log")
    x = sorted({p["pairs"] for p in points})
    a.set_xticks(x, [str(v) for v in x])
    a.minorticks_off()
    a.set_xlabel("attacker-train pairs")
    a.set_ylabel("test SSIM (± s.e.)")
    a.legend(fontsize=8)
    for p in points:
        if p["val_history"] and p["val_identity_ssim"] is not None:
            gain = [v - p["val_identity_ssim"] for v in p["val_history"]]
            name = f"{p['pairs']} pairs" if len(attackers) == 1 else f"{p['attacker']} {p['pairs']}"
            b.plot(range(1, len(gain) + 1), gain, marker=".", label=name)
    b.axhline(0.0, color="grey", ls="--")
    b.set_xlabel("epoch")
    b.set_ylabel("validation SSIM − identity")
    if b.lines[:-1]:
        b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(stat: dict[str, float] | None, digits: int = 3) -> str:
    if not stat or stat.get("n", 0) == 0 or math.isnan(stat["mean"]):
        return "–"
    if math.isinf(stat["mean"]):
        return "∞"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _converged(value: bool | None) -> str:
    return "not validated" if value is None else ("yes" if value else "**did not converge**")


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.0f} %"


def write_report(result: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """Write ``attack_report.md`` and ``attack_results.json``; returns their paths."""
    out = Path(out_dir)
    lines = [
        *_rows_section(result),
        *_learned_section(result.get("learned", {})),
        *_strength_section(result.get("strength") or []),
        *_saturation_section(result.get("learned", {})),
    ]
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    t = result.get("timings_s", {})
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()), ""]
    md = out / "attack_report.md"
    md.write_text("\n".join(lines))
    js = out / "attack_results.json"
    js.write_text(json.dumps(result, indent=1, default=str))
    return {"report": str(md), "json": str(js)}


def _rows_section(result: dict[str, Any]) -> list[str]:
    """Title, set-up, one row per attack, the published figures and how metrics are taken."""
    s = result["settings"]
    lines = [f"# {result['title']}", ""]
    lines.append(
        f"Scenes: {s['source']} at {s['image_size']}² px; {s['train_pairs']} attacker-train / "
        f"{s['test_pairs']} attacker-test pairs (seed {s['seed']}); PSF {s['psf_shape']}; "
        f"attacker K chosen by {s['k_metric'].upper()} on attacker-train pairs."
    )
    lines += [
        "",
        "| method | n | SSIM | PSNR (dB) | faces detected | false-positive imgs | "
        "re-ID top-1 (chance) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        fd = row.get("face_detection", {})
        reid = row.get("reid", {})
        reid_s = "–" if not reid else f"{_pct(reid['top1'])} ({_pct(reid['chance'])})"
        below = " ↓" if row.get("beats_identity") is False else ""
        bound = "≥ " if row.get("lower_bound") else ""
        lines.append(
            f"| {row['label']} | {row['n']} | {bound}{_fmt(row['ssim'])}{below} | "
            f"{_fmt(row['psnr'], 2)} | {_pct(fd.get('rate'))} | "
            f"{_pct(fd.get('false_positive_rate'))} | {reid_s} |"
        )
    below = [r for r in result["rows"] if r.get("beats_identity") is False]
    if below:
        lines += [
            "",
            "↓ below the capture itself on the same images (SSIM "
            + ", ".join(f"{r['name']} {r['identity_ssim']:.3f}" for r in below)
            + "): the attack recovers less than doing nothing, so it says nothing about the "
            "lens's privacy; the strongest attack that counts is taken over the capture and "
            "every attack.",
        ]
    bounded = [r for r in result["rows"] if r.get("lower_bound")]
    if bounded:
        lines += [
            "",
            "≥ **lower bound**: a learned attacker that was not trained to saturation; with "
            "more pairs or epochs it may recover more ("
            + "; ".join(f"{r['name']}: {r['budget']}" for r in bounded)
            + ").",
        ]
    published = published_ssim_text()
    lines += [
        "",
        "Published privacy lens (SSIM vs originals, COCO 256²): captured "
        f"{published['captured']}, Wiener {published['wiener']}, DeblurGAN-v2 "
        f"{published['deblurgan']}.",
        "",
        "Metrics: SSIM with an 11-tap Gaussian window (σ 1.5), data range 1, mean over RGB "
        "(equal to scikit-image's structural_similarity with gaussian_weights); PSNR over "
        "all pixels; face detection with scikit-image's LBP frontal-face cascade (a face "
        "counts when a detection overlaps its box with IoU ≥ 0.3); re-ID: HOG descriptor "
        "of the face crop at its known box, nearest original face in the gallery of "
        "all test faces (chance = 1 / gallery size per identity).",
        "",
    ]
    return lines


def _learned_section(learned: dict[str, Any]) -> list[str]:
    """How each learned attacker trained: validation against the identity, convergence."""
    lines: list[str] = []
    if learned:
        lines += [
            "Learned attackers: trained on attacker-train minus a held-out validation "
            "part, best-validation-SSIM epoch kept; an attacker whose best does not beat "
            "the identity (the captures as they are) on validation did not converge and is "
            "no attack result.",
            "",
            "| attacker | train / val pairs | epochs (best) | val SSIM identity | "
            "val SSIM at start | val SSIM best | val SSIM last epoch | converged |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for kind, info in learned.items():
            lines.append(
                f"| {kind} | {info['train_pairs']} / {info['val_pairs']} | {info['epochs']} "
                f"({info['best_epoch']}) | {_num(info.get('val_identity_ssim'))} | "
                f"{_num(info.get('val_start_ssim'))} | {_num(info.get('val_best_ssim'))} | "
                f"{_num(info.get('val_last_ssim'))} | {_converged(info.get('converged'))} |"
            )
        lines.append("")
    for kind, info in learned.items():
        lines.append(
            f"- {kind}: {info['train_pairs']} pairs, {info['epochs']} epochs "
            f"({info['steps']} steps, {info['seconds']:.0f} s); content loss "
            f"{info['content_loss']}; backbone {info['backbone']}"
            + (f"; learned Wiener K {info['k_final']:.3g}" if "k_final" in info else "")
            + f"; checkpoint `{info['checkpoint']}`."
        )
    return lines


def _strength_section(strength: list[dict[str, Any]]) -> list[str]:
    """The attacker strength curve: test SSIM against attacker-train pairs."""
    if not strength:
        return []
    lines = [
        "",
        f"### Attacker strength curve ({strength[0]['attacker']})",
        "",
        "The same attacker retrained on nested subsets of attacker-train (same "
        "epochs); if the last points still rise, the attacker has not saturated and "
        "more pairs would recover more. ![strength](attack_strength.png)",
        "",
        "| pairs (train / val) | epochs (best) | val SSIM identity | val SSIM best | "
        "test SSIM | test PSNR (dB) | converged |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in strength:
        lines.append(
            f"| {p['pairs']} ({p['train_pairs']} / {p['val_pairs']}) | {p['epochs']} "
            f"({p['best_epoch']}) | {_num(p['val_identity_ssim'])} | "
            f"{_num(p['val_best_ssim'])} | {_fmt(p['ssim'])} | {_fmt(p['psnr'], 2)} | "
            f"{_converged(p['converged'])} |"
        )
    lines.append("")
    return lines


def _saturation_section(learned: dict[str, Any]) -> list[str]:
    """Per learned attacker of a ``--saturate`` run: its doubling (pairs → test SSIM, epochs,
    why each level stopped, time per stage) and the verdict."""
    curves = {k: info["saturation"] for k, info in learned.items() if info.get("saturation")}
    if not curves:
        return []
    lines = [
        "",
        "### Attacker budget to saturation",
        "",
        "Each learned attacker retrained from scratch on doubling attacker-train pairs (the "
        "first n of one generated pool), each level until validation SSIM stopped improving; "
        "the doubling ends when it gains less than the set test SSIM and the level plateaued. "
        "![curves](attack_strength.png)",
        "",
        "| attacker | pairs (train / val) | epochs (best) | stopped by | val SSIM best | "
        "test SSIM | gain | pairs s | train s | test s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, curve in curves.items():
        for p in curve["points"]:
            gain = "–" if p.get("gain") is None else f"{p['gain']:+.4f}"
            lines.append(
                f"| {kind} | {p['pairs']} ({p['train_pairs']} / {p['val_pairs']}) | "
                f"{p['epochs']} ({p['best_epoch']}) | {p.get('stopped', '–')} | "
                f"{_num(p['val_best_ssim'])} | {_fmt(p['ssim'])} | {gain} | "
                f"{p.get('seconds_pairs', 0):.0f} | {p.get('seconds') or 0:.0f} | "
                f"{p.get('seconds_test', 0):.0f} |"
            )
    lines.append("")
    for kind, curve in curves.items():
        verdict = "**saturated**" if curve["status"] == "saturated" else "**lower bound**"
        lines.append(
            f"- {kind}: {verdict}: {curve['reason']} ({curve.get('seconds', 0):.0f} s in this run)."
        )
    lines.append("")
    return lines


def grid_figure(
    path: Path,
    originals: torch.Tensor,
    recons: dict[str, torch.Tensor],
    subsets: dict[str, np.ndarray],
    labels: dict[str, str],
    faces: list | None,
    rows: int,
) -> Path | None:
    """Grid: one row per test image (faces first), columns original / capture / attacks."""
    if rows < 1:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(originals)
    common = set(range(n))
    for idx in subsets.values():
        common &= {int(i) for i in idx}
    order = sorted(common, key=lambda i: (not (faces and faces[i]), i))[:rows]
    if not order:
        order = list(range(min(rows, n)))
    cols = ["original", *recons.keys()]
    fig, axes = plt.subplots(
        len(order), len(cols), figsize=(1.6 * len(cols), 1.6 * len(order)), squeeze=False
    )
    for r, i in enumerate(order):
        for c, key in enumerate(cols):
            ax = axes[r][c]
            ax.axis("off")
            if key == "original":
                img = originals[i]
            else:
                idx = subsets.get(key)
                if idx is not None and i not in set(idx.tolist()):
                    continue
                pos = i if idx is None else int(np.flatnonzero(idx == i)[0])
                img = recons[key][pos]
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            if r == 0:
                ax.set_title(key.replace("_", "\n"), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

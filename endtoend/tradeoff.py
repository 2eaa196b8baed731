"""Privacy–utility frontier: one point per camera, utility against the strongest attack.

Inputs are what the other commands already write: the caption table (``evaluate.py compare``
or ``demo``: ``comparison.csv``, one row per camera) and one
``attack_results.json`` per camera (``evaluate.py attack``). For each camera the *best* attack
is the one with the highest test SSIM among every attack that counts: doing nothing (the
capture itself) always counts, learned attackers only when they beat the identity on their own
validation pairs (``converged``) — an attacker worse than doing nothing is not a threat. Re-ID
is reported for the same best attack and for the attack that re-identifies most *above its own
chance* (attacks run on fewer test images, as the scikit-image references are, have a smaller
gallery and so a higher chance: a raw maximum would crown them for their gallery size).

Outputs: ``tradeoff.csv``, ``tradeoff.md`` and ``tradeoff.png`` (utility — shape F1, grounding
F1 and CIDEr-D — against the best attack's SSIM, and shape F1 against re-ID above chance). Shape
F1 is the key utility axis: blur takes the shapes first, while colours and background, which
grounding F1 pools with them, survive it. A caption table written before the ``shape_f1``
column existed still loads: its shape F1 is computed from ``shape_precision`` and
``shape_recall`` (micro P and R: the same number), or is n/a, said so in ``tradeoff.md``, when
those are missing too.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "TradeoffPoint",
    "best_attack",
    "load_attack_results",
    "read_caption_rows",
    "top_reid",
    "tradeoff_figure",
    "tradeoff_points",
    "tradeoff_report",
    "write_tradeoff",
]

# rows of attack_results.json that are not attacks an adversary runs on the capture
_NOT_ATTACKS = {"original"}


@dataclass
class TradeoffPoint:
    """One camera on the frontier (fractions, CIDEr-D ×100, dB)."""

    camera: str
    grounding_f1: float
    shape_f1: float  # NaN: the caption table has neither shape_f1 nor shape P / R
    cider_d: float
    best_attack: str
    attack_ssim: float
    attack_psnr_db: float
    attack_reid_top1: float
    reid_chance: float  # of the best attack's gallery
    max_reid_attack: str  # the attack that re-identifies most above its own chance
    max_reid_top1: float
    max_reid_chance: float
    attacks_counted: int
    # a learned attacker that counts was not trained to saturation: the strongest attack may
    # be stronger than ``attack_ssim`` (``attacks.scoring.budget_status``)
    attack_lower_bound: bool = False

    @property
    def reid_over_chance_points(self) -> float:
        """The highest re-ID above chance of any attack that counts, in percentage points."""
        return 100 * (self.max_reid_top1 - self.max_reid_chance)


def _mean(block: Mapping[str, Any] | None) -> float:
    value = (block or {}).get("mean", math.nan)
    return math.nan if value is None else float(value)


def best_attack(results: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The strongest attack of one ``attack_results.json`` and every attack that counts.

    Counts: every row except the original scenes; a learned attacker only when its
    ``converged`` flag is not False. Strongest: highest mean test SSIM.
    """
    rows = [r for r in results.get("rows", []) if r.get("name") not in _NOT_ATTACKS]
    counted = [r for r in rows if r.get("converged", True) is not False]
    if not counted:
        raise ValueError(
            "attack results hold no attack rows (not an attack_results.json "
            "written by `evaluate.py attack`?)"
        )
    return max(counted, key=lambda r: _mean(r.get("ssim"))), counted


def top_reid(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The row whose face re-ID is highest above its own gallery's chance (top-1 − chance);
    None when no row has a re-ID result."""
    scored = [
        r for r in rows if (r.get("reid") or {}).get("top1") is not None
        and (r.get("reid") or {}).get("chance") is not None
    ]  # fmt: skip
    return max(scored, key=lambda r: r["reid"]["top1"] - r["reid"]["chance"], default=None)


def read_caption_rows(path: str | Path) -> dict[str, dict[str, str]]:
    """``comparison.csv`` (evaluate.py captions / compare / demo) -> camera -> row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"--captions {path} not found: pass the comparison.csv that "
            "`evaluate.py demo` or `compare` wrote"
        )
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "camera" not in rows[0]:
        raise ValueError(f"--captions {path} has no 'camera' column: not a privcam caption table")
    return {r["camera"]: r for r in rows}


def _float(row: Mapping[str, str], key: str) -> float:
    try:
        return float(row.get(key) or "nan")
    except ValueError:
        return math.nan


def _shape_f1(row: Mapping[str, str]) -> float:
    """Shape F1 of one caption-table row: its ``shape_f1``, or, in a table that predates that
    column, the harmonic mean of ``shape_precision`` and ``shape_recall`` (an empty cell is
    None as ``GroundingCounts.scores`` wrote it: precision with nothing named, F1 0; recall
    with nothing to find, F1 undefined); NaN when the table has no shape columns at all."""
    if "shape_f1" in row:
        return _float(row, "shape_f1")
    if "shape_precision" not in row or "shape_recall" not in row:
        return math.nan
    p, r = _float(row, "shape_precision"), _float(row, "shape_recall")
    if math.isnan(r):
        return math.nan
    if math.isnan(p) or p + r == 0:
        return 0.0
    return 2 * p * r / (p + r)


def _utility(row: Mapping[str, str]) -> dict[str, float]:
    """The utility axes of one caption-table row (fractions; CIDEr-D ×100; NaN: missing)."""
    return {
        "shape_f1": _shape_f1(row),
        "grounding_f1": _float(row, "grounding_f1"),
        "cider_d": _float(row, "CIDEr-D"),
    }


def tradeoff_points(
    captions: Mapping[str, Mapping[str, str]], attacks: Mapping[str, Mapping[str, Any]]
) -> list[TradeoffPoint]:
    """One :class:`TradeoffPoint` per camera that has both a caption row and attack results."""
    unknown = sorted(set(attacks) - set(captions))
    if unknown:
        raise ValueError(
            f"--attacks names {unknown} have no row in the caption table (cameras "
            f"there: {sorted(captions)}); use NAME=attack_results.json with a "
            "camera name from the table"
        )
    points = []
    for camera, results in attacks.items():
        row = captions[camera]
        best, counted = best_attack(results)
        reid = best.get("reid") or {}
        top = top_reid(counted)
        top_ = (top or {}).get("reid") or {}
        points.append(
            TradeoffPoint(
                camera=camera,
                **_utility(row),
                best_attack=str(best.get("name")),
                attack_ssim=_mean(best.get("ssim")),
                attack_psnr_db=_mean(best.get("psnr")),
                attack_reid_top1=float(reid.get("top1", math.nan)),
                reid_chance=float(reid.get("chance", math.nan)),
                max_reid_attack=str(top["name"]) if top else "n/a",
                max_reid_top1=float(top_.get("top1", math.nan)),
                max_reid_chance=float(top_.get("chance", math.nan)),
                attacks_counted=len(counted),
                attack_lower_bound=any(bool(r.get("lower_bound")) for r in counted),
            )
        )
    return points


def _num(v: float, digits: int) -> str:
    return "n/a" if math.isnan(v) else f"{v:.{digits}f}"


# said under the table when a camera's shape F1 could not be read or computed
_NO_SHAPE_F1 = (
    "\nshape F1 n/a: the caption table has no `shape_f1` column, nor `shape_precision` and "
    "`shape_recall` to compute it from (written before shape F1 existed, or without ground "
    "truth); rerun `evaluate.py compare` on the checkpoints for it.\n"
)


# said under the table when a camera's privacy figure is a lower bound on the attack
_LOWER_BOUND = (
    "\n≥ **lower bound**: a learned attacker of this camera was trained at one budget or did "
    "not saturate by its cap (its attack report says which and why), so a stronger attacker "
    "may recover more; `evaluate.py attack --saturate` trains each to saturation.\n"
)


def _markdown(points: Sequence[TradeoffPoint]) -> str:
    head = (
        "| camera | grounding F1 | shape F1 | CIDEr-D | best attack | its SSIM | its PSNR (dB) "
        "| its re-ID (chance) | most re-ID above chance (chance) |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )

    def pct(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{100 * v:.0f} %"

    body = "".join(
        f"| {p.camera} | {_num(p.grounding_f1, 3)} | {_num(p.shape_f1, 3)} | "
        f"{_num(p.cider_d, 1)} | {p.best_attack} | "
        f"{'≥ ' if p.attack_lower_bound else ''}{p.attack_ssim:.3f} | {p.attack_psnr_db:.1f} | "
        f"{pct(p.attack_reid_top1)} ({pct(p.reid_chance)}) | "
        f"{p.max_reid_attack} {pct(p.max_reid_top1)} ({pct(p.max_reid_chance)}) |\n"
        for p in points
    )
    return (
        "# Privacy–utility trade-off\n\nOne row per camera: utility on the caption test split "
        "(grounding F1: what the captions name that is in the image; shape F1: the same for "
        "the object kinds alone, what blur takes first; CIDEr-D), privacy as the "
        "strongest attack that counts (highest test SSIM among the capture itself and every "
        "attack; learned attackers only if they beat the identity on validation) and face "
        "re-identification (top-1, with its gallery's chance): of that attack, and of the attack "
        "that re-identifies most above its own chance.\n\n"
        + head
        + body
        + (_LOWER_BOUND if any(p.attack_lower_bound for p in points) else "")
        + (_NO_SHAPE_F1 if any(math.isnan(p.shape_f1) for p in points) else "")
    )


def write_tradeoff(
    points: Sequence[TradeoffPoint], out: str | Path, blind: Mapping[str, str] | None = None
) -> dict[str, Path]:
    """Write ``tradeoff.csv``, ``tradeoff.md`` and ``tradeoff.png`` into ``out``; ``blind``
    (the caption table's blind row, if any) is drawn as the utility floor: what the language
    prior scores without the image."""
    if not points:
        raise ValueError("no camera has both a caption row and attack results")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "tradeoff.csv", "md": out / "tradeoff.md", "png": out / "tradeoff.png"}
    with paths["csv"].open("w", newline="") as fh:
        rows = [{**asdict(p), "reid_over_chance_points": p.reid_over_chance_points} for p in points]
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = _markdown(points)
    if blind is not None:
        floor = _utility(blind)
        text += (
            "\nBlind captioner (no image, the utility floor): shape F1 "
            f"{_num(floor['shape_f1'], 3)}, grounding F1 {_num(floor['grounding_f1'], 3)}, "
            f"CIDEr-D {_num(floor['cider_d'], 1)}.\n"
        )
    paths["md"].write_text(text)
    fig = tradeoff_figure(points, blind)
    fig.savefig(paths["png"], dpi=110)
    _pyplot().close(fig)
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


_SSIM_LABEL = "best attack SSIM (lower = more private; ≥: lower bound)"
# (x attribute, y attribute, x label, y label) per panel, row-major on a 2 × 2 grid: shape F1
# first, the utility blur destroys first
_PANELS = (
    ("attack_ssim", "shape_f1", _SSIM_LABEL, "shape F1"),
    ("attack_ssim", "grounding_f1", _SSIM_LABEL, "grounding F1"),
    ("attack_ssim", "cider_d", _SSIM_LABEL, "CIDEr-D"),
    ("reid_over_chance_points", "shape_f1", "most face re-ID above chance (points)", "shape F1"),
)


def tradeoff_figure(
    points: Sequence[TradeoffPoint], blind: Mapping[str, str] | None = None
) -> Figure:
    """``tradeoff.png``: 2 × 2 panels of utility (shape F1, grounding F1, CIDEr-D) against
    privacy (best attack SSIM; most re-ID above chance), one point per camera; ``blind`` (the
    caption table's blind row) is each panel's dashed utility floor. A utility missing from
    the caption table (NaN) leaves its points out and says so in the panel."""
    fig, axes = _pyplot().subplots(2, 2, figsize=(10, 8), squeeze=False)
    floors = _utility(blind) if blind is not None else {}
    for ax, (x_key, y_key, x_label, y_label) in zip(axes.ravel(), _PANELS, strict=True):
        # one colour per camera on every panel, also when a panel leaves a point out
        shown = [(f"C{i}", p) for i, p in enumerate(points) if not math.isnan(getattr(p, y_key))]
        for colour, p in shown:
            x, y = getattr(p, x_key), getattr(p, y_key)
            ax.scatter([x], [y], color=colour)
            name = p.camera + (" (≥)" if p.attack_lower_bound and x_key == "attack_ssim" else "")
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if not shown:  # an old caption table: say why the panel is empty
            ax.text(0.5, 0.5, f"{y_label} n/a in the caption table", ha="center",
                    va="center", transform=ax.transAxes, color="grey")  # fmt: skip
        floor = floors.get(y_key, math.nan)
        if not math.isnan(floor):
            ax.axhline(floor, color="grey", linestyle="--", linewidth=1)
            ax.annotate(
                "blind",
                (0.01, floor),
                xycoords=("axes fraction", "data"),
                fontsize=8,
                color="grey",
                xytext=(0, 3),
                textcoords="offset points",
            )
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    fig.suptitle("privacy–utility trade-off (up and to the left is better)")
    fig.tight_layout()
    return fig


def load_attack_results(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME=path/attack_results.json`` -> (name, results)."""
    name, sep, path_str = spec.partition("=")
    if not sep or not name:
        raise ValueError(
            f"--attacks {spec!r}: expected NAME=path/to/attack_results.json "
            "(NAME: a camera of the caption table, e.g. privacy)"
        )
    path = Path(path_str)
    if not path.is_file():
        raise FileNotFoundError(
            f"--attacks {name}={path}: file not found (`evaluate.py attack "
            "--out DIR` writes DIR/attack_results.json)"
        )
    try:
        return name, json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"--attacks {name}={path}: not JSON ({err})") from err


def tradeoff_report(
    captions_csv: str | Path, attack_specs: Sequence[str], out: str | Path
) -> dict[str, Path]:
    """``evaluate.py tradeoff``: the caption table + ``NAME=attack_results.json`` per camera ->
    ``out/tradeoff.{csv,md,png}`` (the table's ``blind`` row, if any, is the utility floor)."""
    captions = read_caption_rows(captions_csv)
    attacks = dict(load_attack_results(spec) for spec in attack_specs)
    return write_tradeoff(tradeoff_points(captions, attacks), out, captions.get("blind"))

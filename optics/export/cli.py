"""``python -m optics.export``: the command line of :func:`optics.export.export_lens`."""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from ..camera import load_camera
from ..cli_config import ArgumentParser
from ..cli_errors import finite_float, run_cli
from .analysis import ProcessLimits
from .lens_file import load_lens_json
from .package import DEFAULT_LEVELS, export_lens

__all__ = ["main"]


def _optional_float(text: str | float | None) -> float | None:
    """A finite number, or None for "none" / "off" (also the parsed values of a --config)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("none", "off")):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number or 'none', got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m optics.export",
        description="Export a learned privcam lens for fabrication (see optics/export/).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", type=Path, help="Lightning checkpoint or save_camera file")
    src.add_argument("--coefficients", type=Path, help="lens.json coefficients file")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=list(DEFAULT_LEVELS),
        help="level counts of the multi-level maps (default: 4 8 16 256)",
    )
    p.add_argument(
        "--wrap-levels",
        action="store_true",
        help="wrap the height modulo one design wave before quantising",
    )
    p.add_argument("--monte-carlo", type=int, default=16, help="fabrication-error draws")
    p.add_argument(
        "--tolerance-um",
        type=finite_float,
        default=None,
        help="uniform height error half-width (default: the lens's tolerance)",
    )
    p.add_argument("--seed", type=int, default=0)
    for flag, default, what in (
        ("--max-sag-um", ProcessLimits.max_sag_um, "deepest structure (PV height), µm"),
        ("--max-slope-deg", ProcessLimits.max_slope_deg, "steepest slope, degrees"),
        ("--min-feature-um", ProcessLimits.min_feature_um, "narrowest hill/valley, µm"),
    ):
        p.add_argument(
            flag, type=_optional_float, default=default, help=f"{what} ('none': no check)"
        )
    p.add_argument("--quick", action="store_true", help="skip the figures")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m optics.export ...``: bad input gives one line ``error: ...`` (exit 2);
    ``--debug`` or ``PRIVCAM_DEBUG=1`` shows the traceback."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.ckpt is not None:
        camera, source = load_camera(args.ckpt), str(args.ckpt)
    else:
        camera, source = load_lens_json(args.coefficients), str(args.coefficients)
    summary = export_lens(
        camera,
        args.out,
        levels=args.levels,
        wrap_levels=args.wrap_levels,
        monte_carlo=args.monte_carlo,
        tolerance_um=args.tolerance_um,
        limits=ProcessLimits(args.max_sag_um, args.max_slope_deg, args.min_feature_um),
        overwrite=args.overwrite,
        quick=args.quick,
        seed=args.seed,
        source=source,
    )
    print(f"exported {source} → {summary['out_dir']} in {summary['seconds']:.1f} s")
    print(
        f"PV {summary['peak_to_valley_um']:.3f} µm, max slope {summary['max_slope_deg']:.2f}°, "
        "Strehl " + ", ".join(f"{k} nm {v:.3f}" for k, v in summary["strehl"].items())
    )
    for w in summary["warnings"]:
        print(f"warning: {w}")
    return 0

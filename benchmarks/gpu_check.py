"""One-shot GPU readiness check: correctness, a bf16 training run, speed, options; one JSON.

    python benchmarks/gpu_check.py                       # on a GPU box (`make gpu-check`)
    python benchmarks/gpu_check.py --device cpu --tiny   # the same code paths, tiny, on CPU (CI)

Checks (a failure makes the exit status 1; the JSON lists it under ``failed``):

* ``optics_parity``: the default privacy optics (896² pupil, 350 Zernike terms, 3 wavelengths,
  PSF 256²; no noise, no quantisation) on ``--device`` against the same camera on CPU, float32:
  PSF max |Δ| ≤ 1e-4 · max PSF, captured image max |Δ| ≤ 1e-4 (images in [0, 1]), gradient of
  a fixed weighted sum of the captures w.r.t. the Zernike coefficients, relative L2 ≤ 1e-3.
  Scale: two float32 implementations on CPU (``bench_optics``'s baseline, with other FFT
  sizes, against ours) agree to 7e-8 of the PSF peak and 4e-7 on the captures, so the
  tolerances leave > 100x room for cuFFT round-off and still catch any real discrepancy.
  On ``--device cpu`` both sides are CPU (the code path is exercised, the numbers are 0).
* ``fit_bf16``: ``train.py fit --config configs/coco.yaml --config configs/coco_privacy.yaml``
  (bf16-mixed, ResNet-101 with random weights, channels-last) for ``fit_steps`` steps on a
  generated COCO-style data set of 256² images (``bench_input.write_synthetic_coco``, prepared
  by the data module): every loss finite, the mean of the last steps below the mean of the
  first, the lens parameters and every PSF the lens produced during training float32, the CNN
  features bf16.
* ``speed`` (a crash fails the check; the figures are reported): end-to-end training step at
  batch 64 (bf16, channels-last) and a bare ResNet-101 forward+backward+Adam step at the same
  batch and size (their ratio), the optics alone (PSF forward+backward, image formation of the
  batch), beam-3 captioning, batched Wiener; images/s, seconds per step and peak CUDA memory of
  each. The issue's targets (≥ 1,500 images/s end to end, ≥ 0.6× bare ResNet-101, Wiener
  ≥ 1,000 images/s) are reported under ``targets``; ``--enforce-targets`` makes them checks.
* ``options`` (measured, never failing): ``torch.compile`` of the captioner, the optics and
  both on the end-to-end step (images/s, first-call seconds, error if it breaks), and the
  training loader's images/s for several ``num_workers``, with a recommendation each.

The timings come from ``benchlib`` (torch.utils.benchmark) and the step builders of
``bench_train_step``, ``bench_optics``, ``bench_captioning``, ``bench_attacks`` and
``bench_input``. ``--tiny`` swaps in a 64² pupil, 32² images, ResNet-18, a small decoder and a
few steps so the whole check runs on a CPU in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from benchlib import device_name, free_memory
from gpu_correctness import check_fit, check_optics_parity, make_fit_data
from gpu_sizes import FULL, TINY
from gpu_speed import measure_compile, measure_speed, measure_workers

from optics.cli_config import ArgumentParser

TARGETS = {  # issue 13, one H100
    "end_to_end_images_per_s": 1500.0,
    "end_to_end_over_bare_resnet": 0.6,
    "wiener_images_per_s": 1000.0,
}


def _section(results: dict[str, Any], name: str, fn: Callable[[], dict[str, Any]]) -> None:
    """Run one section; an exception becomes ``{"ok": false, "error": ...}``; time it."""
    t0 = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as err:
        results[name] = {"ok": False, "error": f"{type(err).__name__}: {str(err)[:2000]}"}
    results[name]["seconds_total"] = time.perf_counter() - t0


def _no_cuda(device: torch.device) -> dict[str, Any]:
    """The summary when ``--device cuda`` finds no usable CUDA: why, and what to do."""
    error = (
        f"--device {device}: torch.cuda.is_available() is False (torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}: a CPU-only build, or no driver/GPU visible); install a "
        "CUDA build (docs/training.md: Setting up a GPU box) or run with --device cpu --tiny"
    )
    return {
        "gpu_check": 1,
        "device": str(device),
        "torch": torch.__version__,
        "checks": {"cuda_available": {"ok": False, "error": error}},
        "failed": ["cuda_available"],
        "ok": False,
    }


def _targets(speed: dict[str, Any], applicable: bool) -> dict[str, Any]:
    """The issue's targets against the ``speed`` section (empty when it did not run or broke);
    ``applicable``: the full sizes on a CUDA device, what the targets are for."""
    if not speed or "error" in speed:
        return {}
    measured = {
        "end_to_end_images_per_s": speed["end_to_end_train"]["images_per_s"],
        "end_to_end_over_bare_resnet": speed["end_to_end_over_bare_resnet"],
        "wiener_images_per_s": speed["wiener"]["images_per_s"],
    }
    targets: dict[str, Any] = {
        k: {"target": TARGETS[k], "measured": v, "met": v >= TARGETS[k]}
        for k, v in measured.items()
    }
    # the targets are for the full sizes on one H100-class GPU
    targets["applicable"] = applicable
    return targets


def run_check(args: argparse.Namespace) -> dict[str, Any]:
    """Every section; returns the JSON summary (``ok`` false if any check failed)."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        return _no_cuda(device)
    sizes = TINY if args.tiny else FULL
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "gpu_check": 1,
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "tiny": args.tiny,
        "torch_threads": torch.get_num_threads(),
    }
    checks: dict[str, Any] = {}
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="privcam_gpu_"))
    try:
        data = work / "coco"
        if not {"fit", "workers"} <= set(args.skip):
            make_fit_data(data, sizes)
        if "parity" not in args.skip:
            _section(checks, "optics_parity", lambda: check_optics_parity(device, sizes))
            free_memory(device)
        if "fit" not in args.skip:
            _section(checks, "fit_bf16", lambda: check_fit(device, sizes, data, work / "fit"))
            free_memory(device)
        speed: dict[str, Any] = {}
        if "speed" not in args.skip:
            _section(checks, "speed", lambda: measure_speed(device, sizes))
            speed = checks["speed"]
            speed.setdefault("ok", "error" not in speed)
        e2e = speed.get("end_to_end_train", {}).get("images_per_s")
        options: dict[str, Any] = {}
        if "compile" not in args.skip:
            backend = args.compile_backend or ("eager" if args.tiny else "inductor")
            _section(options, "compile", lambda: measure_compile(device, sizes, backend, e2e))
        if "workers" not in args.skip:
            _section(options, "data_loader_workers", lambda: measure_workers(data, sizes, e2e))
        result["options"] = options
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    targets = _targets(speed, not args.tiny and device.type == "cuda")
    if targets and args.enforce_targets:
        met = [t["met"] for t in targets.values() if isinstance(t, dict)]
        checks["targets"] = {"ok": all(met)}
    result["checks"] = checks
    result["targets"] = targets
    result["failed"] = [name for name, c in checks.items() if not c.get("ok", False)]
    result["ok"] = not result["failed"]
    result["elapsed_s"] = time.perf_counter() - t_start
    return result


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], raw_description=True)
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (CPU CI: well under a minute)")
    p.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["parity", "fit", "speed", "compile", "workers"],
        help="sections to leave out",
    )
    p.add_argument(
        "--compile-backend", default=None, help="torch.compile backend (inductor; tiny: eager)"
    )
    p.add_argument("--enforce-targets", action="store_true", help="fail below the issue's targets")
    p.add_argument("--workdir", default=None, help="keep data and the fit's run here")
    p.add_argument("--out", default=None, help="also write the JSON summary to this file")
    args = p.parse_args(argv)
    result = run_check(args)
    text = json.dumps(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

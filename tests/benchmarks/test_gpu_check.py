"""The GPU check's CPU tiny mode (the same code paths as on a GPU box) and every benchmark's CLI."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
# the scripts (benchlib and the gpu_check parts are imported by them, not run)
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if '__name__ == "__main__"' in p.read_text())


def _import(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def test_every_benchmark_is_covered():
    assert {
        "bench_attacks",
        "bench_captioning",
        "bench_input",
        "bench_optics",
        "bench_train_step",
        "gpu_check",
    } <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _import(name).main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_time_fn_counts_calls():
    benchlib = _import("benchlib")
    calls = []
    timing = benchlib.time_fn(lambda: calls.append(1), "cpu", repeats=3, warmup=4)
    assert len(calls) == 4 + 3  # torch's Timer.timeit makes 2 of the warm-up calls itself
    assert timing.number == 3 and timing.warmup == 4 and timing.mean_s >= 0
    calls.clear()
    benchlib.time_fn(lambda: calls.append(1), "cpu", repeats=1, warmup=0)
    assert len(calls) == 2 + 1
    record = benchlib.measure(lambda: None, "cpu", items=8, repeats=2)
    assert record["peak_memory_gib"] is None and record["images_per_s"] > 0


def test_gpu_check_cpu_tiny(tmp_path):
    """`gpu_check.py --device cpu --tiny`: one JSON line on stdout, every check passes."""
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "gpu_check.py"),
            "--device",
            "cpu",
            "--tiny",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(lines[0])
    assert result == json.loads(out.read_text())
    assert proc.returncode == 0 and result["ok"], json.dumps(result)[:4000] + proc.stderr[-4000:]
    assert result["failed"] == []
    checks = result["checks"]
    assert set(checks) == {"optics_parity", "fit_bf16", "speed"}
    fit = checks["fit_bf16"]
    assert fit["precision"] == "bf16-mixed" and fit["steps"] == 8
    assert fit["lens_parameter_dtypes"] == fit["psf_dtypes_in_training"] == ["torch.float32"]
    assert fit["loss_last"] < fit["loss_first"]
    speed = checks["speed"]
    for key in (
        "end_to_end_train",
        "bare_resnet_train",
        "optics_image_formation_forward_backward",
        "beam3_captioning",
        "wiener",
    ):
        assert speed[key]["images_per_s"] > 0, key
    assert speed["end_to_end_over_bare_resnet"] > 0
    assert result["targets"]["applicable"] is False
    options = result["options"]
    assert "images_per_s" in options["compile"]["optics"], options["compile"]
    assert options["compile"]["recommended"] in ("off", "captioner", "optics", "both")
    workers = options["data_loader_workers"]
    assert workers["workers_0"]["images_per_s"] > 0 and workers["workers_2"]["images_per_s"] > 0
    assert workers["recommended_num_workers"] in (0, 2)


def test_gpu_check_reports_a_failed_check(tmp_path, monkeypatch, capsys):
    """A check that fails (here: the optics parity raises) gives exit status 1 and names it."""
    gpu_check = _import("gpu_check")

    def broken(*args, **kwargs):
        raise RuntimeError("simulated CUDA mismatch")

    monkeypatch.setattr(gpu_check, "check_optics_parity", broken)
    code = gpu_check.main(
        [
            "--device",
            "cpu",
            "--tiny",
            "--skip",
            "fit",
            "speed",
            "compile",
            "workers",
            "--workdir",
            str(tmp_path),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["failed"] == ["optics_parity"]
    assert "simulated CUDA mismatch" in result["checks"]["optics_parity"]["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_gpu_check_without_cuda_says_so(capsys):
    gpu_check = _import("gpu_check")
    assert gpu_check.main(["--device", "cuda"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] == ["cuda_available"]
    assert "--device cpu --tiny" in result["checks"]["cuda_available"]["error"]

"""Shared helpers of the benchmarks: timing (torch.utils.benchmark), peak memory, device names.

Imported by the ``bench_*.py`` scripts and by ``gpu_check.py`` (they run as scripts, so the
``benchmarks/`` folder is on ``sys.path``; tests add it themselves).

``time_fn`` runs ``warmup`` untimed calls, then ``repeats`` timed blocks of ``number`` calls
each with :class:`torch.utils.benchmark.Timer`, whose timer synchronises the accelerator
before reading the clock, so asynchronous CUDA work is inside the measurement.
"""

from __future__ import annotations

import platform
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.utils.benchmark as tbench

__all__ = ["Timing", "device_name", "measure", "peak_memory_gib", "sync", "time_fn"]


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median and minimum over the timed blocks, and every block's value."""

    median_s: float
    min_s: float
    times_s: tuple[float, ...]

    def to_dict(self) -> dict[str, float | list[float]]:
        out = asdict(self)
        out["times_s"] = list(self.times_s)
        return out


def sync(device: torch.device | str) -> None:
    """Wait for queued work on ``device`` (no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device | str) -> str:
    """CUDA device name, or the CPU's processor string."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def time_fn(
    fn: Callable[[], object],
    device: torch.device | str,
    repeats: int = 5,
    warmup: int = 1,
    number: int = 1,
) -> Timing:
    """Time ``fn()`` with torch.utils.benchmark.Timer: ``warmup`` untimed calls (plans,
    allocator, cudnn autotuning), then ``repeats`` blocks of ``number`` calls."""
    if repeats < 1 or number < 1 or warmup < 0:
        raise ValueError(
            f"repeats and number must be >= 1 and warmup >= 0, got {repeats}, {number}, {warmup}"
        )
    for _ in range(warmup):
        fn()
    sync(device)
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn})
    times = tuple(timer.timeit(number).median for _ in range(repeats))
    return Timing(statistics.median(times), min(times), times)


def peak_memory_gib(fn: Callable[[], object], device: torch.device | str) -> float | None:
    """Peak CUDA memory allocated (GiB, everything live included) while running ``fn()`` once;
    None on CPU."""
    device = torch.device(device)
    if device.type != "cuda":
        fn()
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return torch.cuda.max_memory_allocated(device) / 2**30


def measure(
    fn: Callable[[], object],
    device: torch.device | str,
    items: int,
    repeats: int = 5,
    warmup: int = 1,
) -> dict[str, float | None]:
    """Throughput record of one step that processes ``items`` images: images/s (from the
    median), seconds per step and peak CUDA memory (GiB; None on CPU)."""
    peak = peak_memory_gib(fn, device)  # doubles as the first warm-up call
    t = time_fn(fn, device, repeats=repeats, warmup=max(0, warmup - 1))
    return {
        "images_per_s": items / t.median_s,
        "step_s": t.median_s,
        "step_min_s": t.min_s,
        "peak_memory_gib": peak,
    }

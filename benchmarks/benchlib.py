"""Shared helpers of the benchmarks: timing (torch.utils.benchmark), peak memory, device names.

Imported by the ``bench_*.py`` scripts and by ``gpu_check.py`` (they run as scripts, so the
``benchmarks/`` folder is on ``sys.path``; tests add it themselves).

``time_fn`` times ``repeats`` calls as one block with :class:`torch.utils.benchmark.Timer`,
whose clock synchronises the accelerator before it is read, so asynchronous CUDA work is
inside the measurement.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.utils.benchmark as tbench

__all__ = ["Timing", "device_name", "free_memory", "measure", "sync", "time_fn"]

TIMER_WARMUP = 2  # untimed calls torch.utils.benchmark.Timer.timeit makes before timing


@dataclass(frozen=True)
class Timing:
    """Mean seconds per call over ``number`` timed calls (after ``warmup`` untimed ones)."""

    mean_s: float
    number: int
    warmup: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


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
    warmup: int = 2,
) -> Timing:
    """Mean seconds per call of ``fn()`` over ``repeats`` calls, timed as one block by
    ``torch.utils.benchmark.Timer.timeit`` (which itself runs 2 untimed calls first: plans,
    allocator, cudnn autotuning; ``warmup`` > 2 adds more)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(max(0, warmup - TIMER_WARMUP)):
        fn()
    sync(device)
    measurement = tbench.Timer(stmt="fn()", globals={"fn": fn}).timeit(repeats)
    return Timing(measurement.mean, repeats, max(warmup, TIMER_WARMUP))


def measure(
    fn: Callable[[], object],
    device: torch.device | str,
    items: int,
    repeats: int = 5,
    warmup: int = 2,
) -> dict[str, float | None]:
    """Throughput record of one step that processes ``items`` images: images/s, seconds per
    step (mean of ``repeats``) and the peak CUDA memory (GiB, everything live included) over
    the warm-up and timed calls; None on CPU."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    if cuda:
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
    t = time_fn(fn, device, repeats=repeats, warmup=warmup)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    return {"images_per_s": items / t.mean_s, "step_s": t.mean_s, "peak_memory_gib": peak}


def free_memory(device: torch.device | str) -> None:
    """Hand cached CUDA memory back between measurements (no-op on CPU), so one step's cache
    does not count in the next one's peak."""
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()

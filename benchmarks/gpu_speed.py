"""The GPU check's measured sections: images/s, step time and peak memory of the end-to-end
step and its parts (``speed``), and the options (``torch.compile`` variants, loader workers)
with a recommendation each. A crash fails ``speed``; the options never fail."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_attacks
import bench_captioning
import bench_input
import bench_optics
import bench_train_step
import torch
from benchlib import free_memory, measure
from gpu_sizes import Sizes

__all__ = ["full_step", "measure_compile", "measure_speed", "measure_workers"]


def full_step(device: torch.device, sizes: Sizes, **compile_options: Any) -> Callable[[], None]:
    """One bf16, channels-last end-to-end training step at ``sizes`` (``bench_train_step``)."""
    return bench_train_step.make_full_step(
        device,
        sizes.batch,
        "bf16",
        sizes.backbone,
        sizes.image,
        sizes.cnn,
        sizes.vocab,
        channels_last=True,
        camera={"pupil_grid": sizes.grid, "num_zernike": sizes.terms, **sizes.camera},
        model_kwargs=sizes.captioner,
        **compile_options,
    )


def measure_speed(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """Images/s, seconds per step and peak CUDA memory of every measured step."""
    r = sizes.repeats
    out: dict[str, Any] = {"batch": sizes.batch, "precision": "bf16", "channels_last": True}
    w = sizes.warmup
    out["end_to_end_train"] = measure(full_step(device, sizes), device, sizes.batch, r, w)
    free_memory(device)
    bare = bench_train_step.make_bare_step(
        device, sizes.batch, "bf16", sizes.backbone, sizes.cnn, channels_last=True
    )
    out["bare_resnet_train"] = measure(bare, device, sizes.batch, r, w)
    del bare
    free_memory(device)
    out["end_to_end_over_bare_resnet"] = (
        out["bare_resnet_train"]["step_s"] / out["end_to_end_train"]["step_s"]
    )
    options = {k: v for k, v in sizes.camera.items() if k != "psf_size_px"}
    camera = bench_optics.build_camera(device, sizes.grid, sizes.terms, sizes.image, **options)
    steps = bench_optics.make_optics_steps(camera, sizes.batch, sizes.image, device)
    psf = measure(steps["psf_forward_backward"], device, 1, r)
    out["optics_psf_forward_backward"] = {"psf_per_s": psf.pop("images_per_s"), **psf}
    out["optics_image_formation_forward_backward"] = measure(
        steps["image_formation_forward_backward"], device, sizes.batch, r
    )
    del camera, steps
    free_memory(device)
    beam = bench_captioning.CaptionerSteps(
        device,
        sizes.batch,
        sizes.backbone,
        sizes.cnn,
        sizes.vocab,
        beam_size=3,
        config=sizes.captioner,
    )
    out["beam3_captioning"] = measure(beam.beam_step, device, sizes.batch, r)
    del beam
    free_memory(device)
    wiener = bench_attacks.make_wiener_step(
        sizes.wiener_batch, sizes.image, sizes.wiener_psf, device
    )
    out["wiener"] = measure(wiener, device, sizes.wiener_batch, r)
    out["wiener"]["batch"] = sizes.wiener_batch
    del wiener
    free_memory(device)
    return out


def measure_compile(
    device: torch.device, sizes: Sizes, backend: str, eager_images_per_s: float | None
) -> dict[str, Any]:
    """End-to-end step with torch.compile of the captioner, the optics, both (never fails)."""
    out: dict[str, Any] = {"backend": backend, "eager_images_per_s": eager_images_per_s}
    variants = {
        "captioner": {"compile_captioner": True},
        "optics": {"compile_optics": True},
        "both": {"compile_captioner": True, "compile_optics": True},
    }
    for name in sizes.compile_variants:
        flags = variants[name]
        try:
            step = full_step(device, sizes, compile_backend=backend, **flags)
            t0 = time.perf_counter()
            step()  # compiles
            first = time.perf_counter() - t0
            out[name] = {"first_call_s": first, **measure(step, device, sizes.batch, sizes.repeats)}
        except Exception as err:  # an option that breaks is reported, not fatal
            out[name] = {"error": f"{type(err).__name__}: {str(err)[:500]}"}
        finally:
            torch._dynamo.reset()
            free_memory(device)
    timed = {
        k: v["images_per_s"] for k, v in out.items() if isinstance(v, dict) and "images_per_s" in v
    }
    best = max(timed, key=timed.get, default=None)
    wins = eager_images_per_s and best and timed[best] > 1.05 * eager_images_per_s
    out["recommended"] = best if wins else "off"
    return out


def measure_workers(
    data: Path, sizes: Sizes, consumer_images_per_s: float | None
) -> dict[str, Any]:
    """Training loader images/s per ``num_workers`` (shipped settings otherwise)."""
    from train import CaptionDataModule

    out: dict[str, Any] = {"batch": sizes.batch, "consumer_images_per_s": consumer_images_per_s}
    for w in sizes.workers:
        dm = CaptionDataModule(
            str(data), image_size=sizes.image, batch_size=sizes.batch, num_workers=w
        )
        out[f"workers_{w}"] = bench_input.measure_loader(dm, epochs=2 if w == 0 else 3)
        del dm
    fast = [
        w
        for w in sizes.workers
        if consumer_images_per_s
        and out[f"workers_{w}"]["images_per_s"] >= 1.25 * consumer_images_per_s
    ]
    out["recommended_num_workers"] = min(fast) if fast else max(sizes.workers)
    return out

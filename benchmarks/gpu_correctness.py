"""The GPU check's correctness sections: the optics on the device against the same camera on CPU
(PSF, captures, gradient; stated tolerances), and a bf16-mixed ``train.py fit`` of the COCO
privacy config (loss finite and falling, lens float32, CNN bf16). ``gpu_check.py``'s docstring
states the tolerances' scale."""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from pathlib import Path
from typing import Any

import bench_input
import bench_optics
import torch
from gpu_sizes import Sizes

from optics.camera import LENS_OPTIONS

__all__ = [
    "GRAD_REL_TOL",
    "IMAGE_ABS_TOL",
    "PSF_REL_TOL",
    "check_fit",
    "check_optics_parity",
    "fit_args",
    "make_fit_data",
]

REPO = Path(__file__).resolve().parents[1]
# the COCO privacy training as users run it: the shared base, then the camera file
COCO_CONFIGS = (REPO / "configs" / "coco.yaml", REPO / "configs" / "coco_privacy.yaml")

# stated tolerances of the CUDA-vs-CPU optics comparison (float32 round-off of 1792² FFTs)
PSF_REL_TOL = 1e-4  # max |Δ PSF| / max PSF
IMAGE_ABS_TOL = 1e-4  # max |Δ captured|, images in [0, 1]
GRAD_REL_TOL = 1e-3  # ‖Δ grad‖₂ / ‖grad‖₂


def check_optics_parity(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """The camera on ``device`` against the same camera on CPU (float32, noise and
    quantisation off): PSF, captured images and the coefficients' gradient."""
    options = {**sizes.camera, "read_noise_std": 0.0, "quantize_bits": None}
    options.pop("psf_size_px", None)
    cpu_camera = bench_optics.build_camera("cpu", sizes.grid, sizes.terms, sizes.image, **options)
    dev_camera = copy.deepcopy(cpu_camera).to(device)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(sizes.parity_batch, 3, sizes.image, sizes.image, generator=gen)
    weights = torch.rand(images.shape, generator=gen)

    def run(camera: torch.nn.Module, dev: torch.device) -> tuple[torch.Tensor, ...]:
        camera.zero_grad(set_to_none=True)
        captured, psf = camera.capture(images.to(dev))
        (captured * weights.to(dev)).sum().backward()
        grads = [p.grad.flatten() for p in camera.parameters() if p.grad is not None]
        return psf.detach().cpu(), captured.detach().cpu(), torch.cat(grads).cpu()

    psf_c, img_c, grad_c = run(cpu_camera, torch.device("cpu"))
    psf_d, img_d, grad_d = run(dev_camera, device)
    out = {
        "config": {"pupil_grid": sizes.grid, "terms": sizes.terms, "psf": sizes.image},
        "dtypes": sorted({str(t.dtype) for t in (psf_d, img_d, grad_d)}),
        "psf_max_rel_diff": float((psf_d - psf_c).abs().max() / psf_c.abs().max()),
        "image_max_abs_diff": float((img_d - img_c).abs().max()),
        "grad_rel_l2_diff": float((grad_d - grad_c).norm() / grad_c.norm().clamp_min(1e-30)),
        "tolerances": {
            "psf_max_rel_diff": PSF_REL_TOL,
            "image_max_abs_diff": IMAGE_ABS_TOL,
            "grad_rel_l2_diff": GRAD_REL_TOL,
        },
    }
    out["ok"] = (
        out["dtypes"] == ["torch.float32"]
        and out["psf_max_rel_diff"] <= PSF_REL_TOL
        and out["image_max_abs_diff"] <= IMAGE_ABS_TOL
        and out["grad_rel_l2_diff"] <= GRAD_REL_TOL
        and bool(torch.isfinite(grad_c).all())
    )
    return out


def make_fit_data(root: Path, sizes: Sizes) -> Path:
    """COCO-style data set for the fit and the loader measurements (if not there yet)."""
    if not (root / "dataset_coco.json").exists():
        bench_input.write_synthetic_coco(
            root, train=sizes.fit_train_images, val=sizes.batch, test=sizes.batch, size=sizes.image
        )
    return root


def fit_args(device: torch.device, sizes: Sizes, data: Path, run_dir: Path) -> list[str]:
    """LightningCLI arguments of the bf16 smoke fit of the COCO privacy config."""
    args = [
        "--config", str(COCO_CONFIGS[0]), "--config", str(COCO_CONFIGS[1]),
        "--data.root", str(data), "--data.image_size", str(sizes.image),
        "--data.batch_size", str(sizes.batch), "--data.eval_batch_size", str(sizes.batch),
        "--data.max_eval_images", str(sizes.batch), "--data.num_workers", "2",
        "--data.min_word_count", "1",
        "--model.backbone", sizes.backbone, "--model.weights", "null",
        "--model.warmup_steps", "5",
        "--trainer.accelerator", "gpu" if device.type == "cuda" else "cpu",
        "--trainer.devices", "1", "--trainer.precision", "bf16-mixed",
        "--trainer.max_steps", str(sizes.fit_steps), "--trainer.limit_val_batches", "1",
        "--trainer.num_sanity_val_steps", "0", "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(run_dir),
    ]  # fmt: skip
    camera = {"pupil_grid": sizes.grid, "num_zernike": sizes.terms, **sizes.camera}
    for key, value in {**camera, **sizes.captioner}.items():
        lens = "lens." if key in LENS_OPTIONS else ""  # CameraConfig.lens
        prefix = f"--model.camera.{lens}" if key in camera else "--model."
        args += [prefix + key, str(value)]
    return args + sizes.fit_extra


def check_fit(device: torch.device, sizes: Sizes, data: Path, run_dir: Path) -> dict[str, Any]:
    """bf16-mixed ``train.py fit`` of the COCO privacy config: loss finite and falling, lens
    float32 throughout, CNN in bf16."""
    import lightning as L

    from train import cli_main

    losses: list[float] = []
    psf_dtypes: set[str] = set()
    feature_dtypes: set[str] = set()

    class Record(L.Callback):
        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, *_: Any) -> None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            losses.append(float(loss))

    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one JSON line
        cli = cli_main(fit_args(device, sizes, data, run_dir), run=False)
        model = cli.model
        model.camera.lens.register_forward_hook(lambda m, i, o: psf_dtypes.add(str(o.dtype)))
        model.captioner.encoder.register_forward_hook(
            lambda m, i, o: feature_dtypes.add(str(o[0].dtype))
        )
        cli.trainer.callbacks.append(Record())
        t0 = time.perf_counter()
        cli.trainer.fit(model, datamodule=cli.datamodule)
        seconds = time.perf_counter() - t0
    n = max(2, len(losses) // 5)
    first = sum(losses[:n]) / n if losses else math.nan
    last = sum(losses[-n:]) / n if losses else math.nan
    lens_dtypes = sorted({str(p.dtype) for p in model.camera.lens.parameters()})
    out = {
        "steps": len(losses),
        "seconds": seconds,
        "precision": str(cli.trainer.precision),
        "backbone": sizes.backbone,
        "loss_first": first,
        "loss_last": last,
        "losses": [round(v, 4) for v in losses],
        "all_finite": all(math.isfinite(v) for v in losses),
        "lens_parameter_dtypes": lens_dtypes,
        "psf_dtypes_in_training": sorted(psf_dtypes),
        "cnn_feature_dtypes": sorted(feature_dtypes),
    }
    out["ok"] = (
        len(losses) == sizes.fit_steps
        and out["all_finite"]
        and last < first
        and lens_dtypes == ["torch.float32"]
        and sorted(psf_dtypes) == ["torch.float32"]
        and "torch.bfloat16" in feature_dtypes
    )
    return out

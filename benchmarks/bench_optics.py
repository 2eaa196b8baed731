"""Optics speed and memory benchmark; prints one JSON line.

Default configuration (docs/design.md): 350 Zernike terms, 896² pupil padded to 1792², 3
wavelengths, PSF area-resampled to 256², batch 16×3×256² images. Times, side by side in the
same run:

* ``ours``: privcam's ZernikeLens (symmetry-reduced basis, separable cropped Fresnel propagation);
* ``baseline``: the straightforward implementation — the full 350×896² float32 basis cached and
  summed on every call, two-FFT Fresnel transfer function on the full 1792² padded field, then
  the same crop / area resampling — so the speed-up is a ratio measured on one machine.

Peak memory of the optics (forward+backward, buffers included) is measured in a fresh
subprocess per variant: on CPU as the growth of the process's peak resident set (VmHWM, reset
after start-up), on CUDA with torch.cuda.max_memory_allocated.

    python benchmarks/bench_optics.py [--device cuda] [--repeats 5] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchlib import device_name, sync, time_fn

from optics import Camera
from optics import functional as fn
from optics.cli_config import ArgumentParser
from optics.zernike import zernike_basis


class BaselinePSF(torch.nn.Module):
    """Straightforward PSF: cached full basis, 2-D FFT Fresnel transfer function, padded field."""

    def __init__(self, lens: torch.nn.Module) -> None:
        super().__init__()
        n, pitch = lens.pupil_grid, lens.pupil_pitch_um * 1e-6
        c = np.arange(n) - n // 2
        x, y = np.meshgrid(c, -c)
        rho, theta = np.hypot(x, y) / (n / 2), np.arctan2(y, x)
        self.register_buffer(
            "basis", torch.from_numpy(zernike_basis(lens.num_zernike, rho, theta, np.float32))
        )
        self.register_buffer("aperture", torch.from_numpy(4 * (x**2 + y**2) < n * n))
        self.register_buffer("base_phase", lens.to_grid(lens.base_phase))
        self.register_buffer("phase_per_um", lens.phase_per_um.clone())
        self.register_buffer("resample_matrix", lens.resample_matrix.clone())
        lam = lens.wavelengths_m.double()
        h1 = fn.fresnel_transfer_function_1d(lens.n_pad, pitch, lam, lens.sensor_distance_mm * 1e-3)
        self.register_buffer("tf", (h1[:, :, None] * h1[:, None, :]).to(torch.complex64))
        self.coefficients_um = torch.nn.Parameter(
            lens.coefficients_um().detach()[: lens.num_zernike].clone()
        )
        self.n, self.n_pad, self.n_out = n, lens.n_pad, lens.n_out

    def forward(self) -> torch.Tensor:
        h = torch.tensordot(self.coefficients_um, self.basis, dims=1)
        phase = self.base_phase + self.phase_per_um[:, None, None] * h
        field = torch.polar(self.aperture.to(phase.dtype).expand_as(phase), phase)
        start = self.n_pad // 2 - self.n // 2
        pad = (start, self.n_pad - self.n - start)
        field = torch.nn.functional.pad(field, pad + pad)
        u = torch.fft.ifft2(torch.fft.fft2(torch.fft.ifftshift(field, dim=(-2, -1))) * self.tf)
        u = torch.fft.fftshift(u, dim=(-2, -1))
        lo = self.n_pad // 2 - self.n_out // 2
        u = u[..., lo : lo + self.n_out, lo : lo + self.n_out]
        return fn.psf_intensity_to_sensor(u.real.square() + u.imag.square(), self.resample_matrix)


def build(args: argparse.Namespace, device: torch.device, **overrides: Any) -> Camera:
    """The benchmarked privacy camera (eval mode: no fabrication noise) on ``device``."""
    return build_camera(device, args.grid, args.terms, args.psf, **overrides)


def build_camera(
    device: torch.device | str,
    grid: int = 896,
    terms: int = 350,
    psf: int = 256,
    **overrides: Any,
) -> Camera:
    """Privacy camera with a random surface that still samples correctly (max step < π), no
    fabrication noise, in eval mode; ``overrides`` are further CameraConfig options."""
    options = {"init_std_um": 0.002, "fabrication_tolerance_um": 0.0, **overrides}
    camera = Camera("privacy", pupil_grid=grid, num_zernike=terms, psf_size_px=psf, **options)
    return camera.to(device).eval()


def make_optics_steps(
    camera: Camera, batch: int, image: int, device: torch.device | str
) -> dict[str, Callable[[], None]]:
    """Timed optics steps: PSF forward (no grad), PSF forward+backward, and image formation
    (PSF + linear convolution of ``batch``×3×``image``² scenes + sensor) forward+backward."""
    lens = camera.lens
    k = camera.config.lens.psf_size_px
    weights = torch.rand(3, k, k, device=device)
    images = torch.rand(batch, 3, image, image, device=device)

    def psf_fwd() -> None:
        with torch.no_grad():
            lens()

    def psf_fwd_bwd() -> None:
        lens.zero_grad(set_to_none=True)
        (lens() * weights).sum().backward()

    def image_fwd_bwd() -> None:
        camera.zero_grad(set_to_none=True)
        captured, _ = camera.capture(images)
        captured.mean().backward()

    return {
        "psf_forward": psf_fwd,
        "psf_forward_backward": psf_fwd_bwd,
        "image_formation_forward_backward": image_fwd_bwd,
    }


def _time(fn_: Callable[[], object], device: torch.device, repeats: int) -> float:
    return time_fn(fn_, device, repeats=repeats).mean_s


def measure_times(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    camera = build(args, device)
    lens = camera.lens
    weights = torch.rand(3, args.psf, args.psf, device=device)
    steps = make_optics_steps(camera, args.batch, args.image, device)
    out: dict = {}
    out["ours"] = {f"{name}_s": _time(step, device, args.repeats) for name, step in steps.items()}
    if not args.no_baseline:
        base = BaselinePSF(lens).to(device)

        def base_fwd():
            with torch.no_grad():
                base()

        def base_fwd_bwd():
            base.zero_grad(set_to_none=True)
            (base() * weights).sum().backward()

        out["baseline"] = {
            "psf_forward_s": _time(base_fwd, device, args.repeats),
            "psf_forward_backward_s": _time(base_fwd_bwd, device, args.repeats),
        }
        with torch.no_grad():
            a, b = lens().double().flatten(), base().double().flatten()
        out["psf_correlation_with_baseline"] = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
        out["psf_max_abs_diff"] = float((a - b).abs().max())
        out["speedup_psf_forward_backward"] = (
            out["baseline"]["psf_forward_backward_s"] / out["ours"]["psf_forward_backward_s"]
        )
        out["speedup_psf_forward"] = out["baseline"]["psf_forward_s"] / out["ours"]["psf_forward_s"]
    return out


# ---------------------------------------------------- memory (one variant per process)


def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory_child(args: argparse.Namespace) -> None:
    """Peak bytes of building the optics and one forward+backward (printed as JSON)."""
    device = torch.device(args.device)
    torch.zeros(8, 8, dtype=torch.complex64, device=device)  # load FFT/complex kernels first
    torch.fft.fft(torch.zeros(8, dtype=torch.complex64, device=device))
    weights = torch.rand(3, args.psf, args.psf, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM)
        start = _vm_kib("VmRSS") * 1024
    camera = build(args, device)
    module = camera.lens if args.memory_child == "ours" else BaselinePSF(camera.lens).to(device)
    if args.memory_child == "baseline":
        del camera  # the baseline owns everything it uses
    (module() * weights).sum().backward()
    sync(device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - start
    else:
        peak = _vm_kib("VmHWM") * 1024 - start
    print(json.dumps({"peak_bytes": peak}))


def measure_memory(args: argparse.Namespace, variant: str) -> float:
    cmd = [
        sys.executable,
        __file__,
        "--memory-child",
        variant,
        "--device",
        args.device,
        "--grid",
        str(args.grid),
        "--terms",
        str(args.terms),
        "--psf",
        str(args.psf),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])["peak_bytes"] / 2**30


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--image", type=int, default=256)
    p.add_argument("--grid", type=int, default=896)
    p.add_argument("--terms", type=int, default=350)
    p.add_argument("--psf", type=int, default=256)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--memory-child", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        measure_memory_child(args)
        return
    result = {
        "benchmark": "optics",
        "device": args.device,
        "device_name": device_name(args.device),
        "torch_threads": torch.get_num_threads(),
        "config": {
            "pupil_grid": args.grid,
            "padded": 2 * args.grid,
            "terms": args.terms,
            "wavelengths": 3,
            "psf": args.psf,
            "batch": [args.batch, 3, args.image, args.image],
        },
        **measure_times(args),
    }
    if not args.no_memory:
        result["ours"]["peak_memory_gib"] = measure_memory(args, "ours")
        if not args.no_baseline:
            result["baseline"]["peak_memory_gib"] = measure_memory(args, "baseline")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

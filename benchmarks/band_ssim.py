"""Which spatial-frequency band SSIM rewards, against the band each lens passes; one JSON line.

Two measurements on the embedded test scenes (the attack harness's attacker-test images):

* **band SSIM**: the SSIM of each scene low-passed by an ideal (brick-wall, radial) filter at
  cutoff f, against the scene: what an attacker who recovered every frequency below f exactly,
  and nothing above, would score. It says how much SSIM the lowest frequencies alone are worth.
* **lens band**, per checkpoint or preset: the lens's radially averaged MTF (mean over
  wavelengths) at those cutoffs, and the highest frequency at which it still passes 10 % and
  2 % of the contrast (the band a non-blind attacker can invert above the sensor noise).

    python benchmarks/band_ssim.py --ckpt runs/demo/privacy/checkpoints/best.ckpt \\
        --ckpt runs/demo/defocus/checkpoints/best.ckpt [--images 300] [--image-size 64]
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attacks.metrics import ssim
from attacks.pairs import to_tensor
from attacks.scenes import make_embedded_set
from optics.cli_config import ArgumentParser
from optics.merit import radial_mtf

CUTOFFS = (1 / 32, 1 / 16, 3 / 32, 1 / 8, 3 / 16, 1 / 4, 1 / 2)  # cycles per pixel


def lowpass(images: torch.Tensor, cutoff_cyc_px: float) -> torch.Tensor:
    """(N, C, H, W) images with every frequency above ``cutoff_cyc_px`` (radial) removed
    (periodic FFT filter; at 0.5, the Nyquist frequency, only the spectrum's corners go)."""
    h, w = images.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    keep = (torch.hypot(fy, fx) <= cutoff_cyc_px + 1e-12).to(images.dtype)
    return torch.fft.irfft2(torch.fft.rfft2(images) * keep, s=(h, w)).clamp(0, 1)


def band_ssim(images: torch.Tensor, cutoffs: tuple[float, ...] = CUTOFFS) -> dict[str, float]:
    """Mean SSIM of the low-passed scenes against the scenes, per cutoff (cycles/px)."""
    return {f"{c:.4f}": float(ssim(lowpass(images, c), images).mean()) for c in cutoffs}


def lens_band(camera: Any, cutoffs: tuple[float, ...] = CUTOFFS) -> dict[str, Any]:
    """A camera's radially averaged MTF (wavelength mean) at ``cutoffs`` (cycles/px) and the
    highest frequencies where it still passes 10 % and 2 % of the contrast."""
    with torch.no_grad():
        psf = camera.psf()
    if psf is None:
        return {"mtf": None, "band_10pct_cyc_px": None, "band_2pct_cyc_px": None}
    pitch_um = float(camera.lens.sensor_pitch_um)
    freq_mm, mtf = radial_mtf(psf.double().cpu().numpy(), pitch_um)
    freq = freq_mm * pitch_um * 1e-3  # cycles per pixel
    mean = mtf.mean(axis=0)

    def band(level: float) -> float:
        above = np.flatnonzero(mean >= level)
        return float(freq[above.max()]) if above.size else 0.0

    return {
        "mtf": {f"{c:.4f}": float(np.interp(c, freq, mean)) for c in cutoffs},
        "band_10pct_cyc_px": band(0.10),
        "band_2pct_cyc_px": band(0.02),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", action="append", default=[], help="lens checkpoint (repeat)")
    parser.add_argument("--preset", action="append", default=[], help="camera preset (repeat)")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t = time.perf_counter()
    scenes = to_tensor(make_embedded_set(args.images, args.image_size, args.seed).images)
    result: dict[str, Any] = {
        "benchmark": "band_ssim",
        "machine": platform.processor() or platform.machine(),
        "images": args.images,
        "image_size": args.image_size,
        "band_ssim": band_ssim(scenes),
        "lenses": {},
    }
    from attacks.adversary import camera_and_in_loop_attacker
    from optics import Camera

    for ckpt in args.ckpt:
        camera = camera_and_in_loop_attacker(ckpt)[0].eval()
        result["lenses"][str(Path(ckpt))] = lens_band(camera)
    for preset in args.preset:
        camera = Camera(preset, psf_size_px=args.image_size).eval()
        result["lenses"][preset] = lens_band(camera)
    result["seconds"] = time.perf_counter() - t
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

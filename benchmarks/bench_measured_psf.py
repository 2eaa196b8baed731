"""Design → bench → simulator round trip on a trained lens; one JSON line.

Simulates a bench measurement of the checkpoint's lens (``optics.bench``: another pixel pitch,
a background level, read noise, a sub-pixel offset, 12-bit quantisation), writes it as a 16-bit
TIFF, reads it back through the ``measured`` preset and compares, on the checkpoint's test
split: the PSFs (correlation, raw and with the design moved onto its centroid, where the bench
puts it), the captions of the checkpoint's captioner through either camera (grounding and
shape F1) and the exact-model Wiener attack (SSIM) on either camera, plus the design camera
attacked with the measured PSF (the attacker who measured the lens as made).

    python benchmarks/bench_measured_psf.py --ckpt runs/demo/privacy/checkpoints/best.ckpt \\
        --out runs/measured_round_trip [--pitch-um 4.4] [--beam 3]
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
from scipy import ndimage

from attacks import run_attacks
from endtoend.checkpoints import load_model
from endtoend.evaluation import evaluate_captions
from optics import Camera
from optics.bench import simulate_bench_measurement
from optics.cli_config import ArgumentParser
from optics.measured_psf import centroid_px


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def wiener_ssim(camera: Camera, data_root: str, out: Path, size: int, **kw: Any) -> float:
    result = run_attacks(camera, data_root, out, "wiener", image_size=size, max_images=150,
                         detect_faces=False, **kw)  # fmt: skip
    return next(r["ssim"]["mean"] for r in result["rows"] if r["name"] == "wiener")


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", default="runs/measured_round_trip")
    p.add_argument("--pitch-um", type=float, default=4.4, help="bench camera pixel pitch")
    p.add_argument("--beam", type=int, default=3)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    module, raw = load_model(args.ckpt)
    design = module.camera.eval()
    lens = design.lens
    k = lens.psf_size_px
    size_px = int(np.ceil(1.25 * k * lens.sensor_pitch_um / args.pitch_um))
    frame = simulate_bench_measurement(
        lens, args.pitch_um, size_px, offset_px=(2.37, -3.81), background_dn=100.0,
        read_noise_dn=3.0, bits=12, seed=0,
    )  # fmt: skip
    bench = out / "bench_psf.tif"
    tifffile.imwrite(bench, np.moveaxis(frame, 0, -1))
    measured = {"preset": "measured", "psf_file": str(bench), "psf_pitch_um": args.pitch_um,
                "psf_saturation_level": 4095}  # fmt: skip
    camera = Camera({**design.config.to_dict(), **measured}).eval()
    with torch.no_grad():
        made, ideal = camera.psf().numpy(), design.psf(height_noise=False).numpy()
    row, col = centroid_px(ideal.astype(np.float64))
    aligned = np.stack([ndimage.shift(q, (k // 2 - row, k // 2 - col), order=1) for q in ideal])
    data_hp = raw.get("datamodule_hyper_parameters", {})
    root, image_size = str(data_hp.get("root")), int(data_hp.get("image_size", k))
    captions = {}
    for name, swap in (("design", None), ("measured", measured)):
        r = evaluate_captions(args.ckpt, "test", args.beam, out / f"captions_{name}", camera=swap)
        captions[name] = {m: r["metrics"][m] for m in ("grounding_f1", "shape_f1", "CIDEr-D")}
    t1 = time.perf_counter()
    attacks = {
        "design": wiener_ssim(design, root, out / "wiener_design", image_size),
        "measured": wiener_ssim(camera, root, out / "wiener_measured", image_size),
        "design_attacked_with_measured_psf": wiener_ssim(
            design,
            root,
            out / "wiener_cross",
            image_size,
            attacker_psf=(camera.psf().detach(), str(bench)),
        ),
    }
    per_channel = [correlation(m, a) for m, a in zip(made, aligned, strict=True)]
    print(json.dumps({
        "bench": {"pitch_um": args.pitch_um, "size_px": size_px, "offset_px": [2.37, -3.81],
                  "background_dn": 100.0, "read_noise_dn": 3.0, "bits": 12},
        "psf_correlation_centroid_aligned": correlation(made, aligned),
        "psf_correlation_per_channel": per_channel,
        "psf_correlation_raw": correlation(made, ideal),
        "design_centroid_offset_px": [row - k // 2, col - k // 2],
        "captions": captions, "wiener_ssim": attacks,
        "captions_s": t1 - t0, "attacks_s": time.perf_counter() - t1,
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
    }))  # fmt: skip


if __name__ == "__main__":
    main()

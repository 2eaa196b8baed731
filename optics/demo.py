"""Render a photo through a privacy lens: PSFs, height map, capture and a short summary.

    python -m optics.demo --out runs/optics_demo [--defocus-um 3] [--init-std-um 0.002]

Uses scikit-image's bundled ``astronaut()`` photo (offline) at 256².
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import plots
from .camera import Camera
from .cli_config import ArgumentParser
from .cli_errors import finite_float, positive_int, run_cli
from .lens import ZernikeLens

log = logging.getLogger(__name__)


def psf_rms_radius_px(psf: torch.Tensor) -> torch.Tensor:
    """RMS radius (second moment about the centroid) of each PSF (Λ, K, K), in pixels → (Λ,)."""
    k = psf.shape[-1]
    c = torch.arange(k, dtype=psf.dtype, device=psf.device)
    total = psf.sum((-1, -2))
    my = (psf.sum(-1) * c).sum(-1) / total
    mx = (psf.sum(-2) * c).sum(-1) / total
    r2 = (c[None, :, None] - my[:, None, None]) ** 2 + (c[None, None, :] - mx[:, None, None]) ** 2
    return torch.sqrt((psf * r2).sum((-1, -2)) / total)


def save_png(path: Path, image: np.ndarray) -> None:
    from skimage.io import imsave

    imsave(path, (np.clip(image, 0, 1) * 255).round().astype(np.uint8), check_contrast=False)


def run(out: Path, defocus_um: float, init_std_um: float, seed: int, size: int) -> dict:
    """Capture ``astronaut()`` (size²) through a privacy lens; write the images, PSF and height
    figures and ``summary.txt`` into ``out``; return the summary numbers."""
    from skimage.data import astronaut
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from skimage.transform import resize

    out.mkdir(parents=True, exist_ok=True)
    camera = Camera(
        "privacy",
        initial_defocus_um=defocus_um,
        init_std_um=init_std_um,
        init_seed=seed,
        psf_size_px=size,
    ).eval()
    scene = resize(astronaut() / 255.0, (size, size), anti_aliasing=True)
    images = torch.from_numpy(scene).permute(2, 0, 1)[None].float()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        captured, psf = camera.capture(images, generator=gen)
        height = camera.lens.height_map_um(include_base=False)
    captured_np = captured[0].permute(1, 2, 0).numpy().astype(np.float64)
    save_png(out / "original.png", scene)
    save_png(out / "captured.png", captured_np)

    lens = camera.lens
    widths = psf_rms_radius_px(psf.double())
    psf_np = psf.double().numpy()
    plots.save_figure(
        plots.psf_figure(psf_np, lens.wavelengths_nm, lens.sensor_pitch_um), out / "psfs.png", 100
    )
    plots.save_psf_images(out, psf_np, lens.wavelengths_nm)
    h = np.where(plots.aperture_mask_of(lens), height.double().numpy(), np.nan)
    half_mm = lens.pupil_grid * lens.pupil_pitch_um * 1e-3 / 2
    fig = plots.height_figure([(h, "Zernike height (µm, base lens removed)")], half_mm)
    plots.save_figure(fig, out / "height_map.png", 100)

    # the attacks' SSIM convention (Gaussian window σ 1.5, population covariance), from
    # scikit-image: optics sits below attacks and imports none of it
    ssim = structural_similarity(
        scene, captured_np, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=1.0, channel_axis=-1,
    )  # fmt: skip
    summary = {
        "ssim_captured_vs_original": float(ssim),
        "psnr_db": float(peak_signal_noise_ratio(scene, captured_np, data_range=1.0)),
        "psf_rms_radius_px": {
            f"{lam:g}nm": float(w) for lam, w in zip(lens.wavelengths_nm, widths, strict=True)
        },
        "psf_rms_radius_um": {
            f"{lam:g}nm": float(w) * lens.sensor_pitch_um
            for lam, w in zip(lens.wavelengths_nm, widths, strict=True)
        },
        "max_phase_step_rad": lens.check_phase_sampling(),
        "height_pv_um": float(np.nanmax(h) - np.nanmin(h)),
    }
    (out / "summary.txt").write_text(
        "\n".join(_summary_lines(lens, summary, defocus_um, init_std_um, seed)) + "\n"
    )
    return summary


def _summary_lines(
    lens: ZernikeLens, summary: dict, defocus_um: float, init_std_um: float, seed: int
) -> list[str]:
    return [
        "privcam optics demo: skimage.data.astronaut() through a privacy lens",
        f"lens: {len(lens.trainable_indices) + 3} Zernike terms, defocus Z4 = {defocus_um:g} µm, "
        f"random terms σ = {init_std_um:g} µm (seed {seed}); {lens.pupil_grid}² pupil at "
        f"{lens.pupil_pitch_um:g} µm, z = {lens.sensor_distance_mm:g} mm, sensor pitch "
        f"{lens.sensor_pitch_um:g} µm",
        f"Zernike height peak-to-valley: {summary['height_pv_um']:.2f} µm; max phase step "
        f"{summary['max_phase_step_rad']:.2f} rad (must stay < π)",
        "PSF RMS radius: "
        + ", ".join(
            f"{k} {v:.1f} px ({summary['psf_rms_radius_um'][k]:.0f} µm)"
            for k, v in summary["psf_rms_radius_px"].items()
        ),
        f"SSIM captured vs original: {summary['ssim_captured_vs_original']:.3f}; "
        f"PSNR {summary['psnr_db']:.1f} dB",
        "files: original.png captured.png psfs.png psf_*nm.png height_map.png",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m optics.demo ...``: bad input gives one line ``error: ...`` (exit 2)."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    p = ArgumentParser(prog="python -m optics.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/optics_demo"))
    p.add_argument("--defocus-um", type=finite_float, default=3.0, help="initial Z4 (µm of height)")
    p.add_argument("--init-std-um", type=finite_float, default=0.002, help="random Zernike σ (µm)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=positive_int, default=256, help="image and PSF size (px)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run(args.out, args.defocus_um, args.init_std_um, args.seed, args.size)
    print((args.out / "summary.txt").read_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

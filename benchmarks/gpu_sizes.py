"""Problem sizes of the GPU check: the full ones for one GPU, and tiny ones that run the same
code paths on a CPU in well under a minute (CI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FULL", "TINY", "TINY_CAMERA", "TINY_CAPTIONER", "Sizes"]

# a physically valid small camera (64² pupil at 4 µm, Fresnel-sampled at 6 mm, 4× padding)
TINY_CAMERA = {  # with pupil_grid 64, num_zernike 15 (Sizes.grid, Sizes.terms)
    "pupil_pitch_um": 4.0,
    "pad_factor": 4.0,
    "sensor_distance_mm": 6.0,
    "psf_size_px": 32,
    "sensor_pitch_um": 8.0,
    "initial_defocus_um": 0.5,
}
TINY_CAPTIONER = {"embed_dim": 32, "hidden_dim": 32, "attention_dim": 16, "grid_size": 2}


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one mode (full on a GPU, tiny for CI)."""

    camera: dict[str, Any]  # CameraConfig options on top of the privacy preset
    grid: int
    terms: int
    image: int  # scene = PSF size
    cnn: int
    backbone: str
    batch: int
    vocab: int
    captioner: dict[str, Any]  # CaptionerConfig overrides (decoder sizes, grid)
    fit_steps: int
    fit_train_images: int
    wiener_batch: int
    wiener_psf: int
    workers: tuple[int, ...]
    repeats: int
    parity_batch: int
    warmup: int = 2
    compile_variants: tuple[str, ...] = ("captioner", "optics", "both")
    fit_extra: list[str] = field(default_factory=list)


FULL = Sizes(
    camera={},
    grid=896,
    terms=350,
    image=256,
    cnn=224,
    backbone="resnet101",
    batch=64,
    vocab=10000,
    captioner={},
    fit_steps=50,
    fit_train_images=1280,
    wiener_batch=256,
    wiener_psf=64,
    workers=(0, 4, 8, 12),
    repeats=10,
    parity_batch=4,
)
TINY = Sizes(
    camera=TINY_CAMERA,
    grid=64,
    terms=15,
    image=32,
    cnn=32,
    backbone="resnet18",
    batch=4,
    vocab=100,
    captioner=TINY_CAPTIONER,
    fit_steps=8,
    fit_train_images=32,
    wiener_batch=4,
    wiener_psf=8,
    workers=(0, 2),
    repeats=1,
    parity_batch=2,
    warmup=1,
    compile_variants=("optics",),  # the same code path; tracing the captioner takes ~20 s
    fit_extra=[
        "--model.psf_mask_radius_px",
        "4",
        "--model.trainable_from",
        "layer1",
        "--model.dropout",
        "0.0",
        "--model.cnn_input_size",
        "32",
    ],
)

"""From the design to the bench and back: the export's psf.npz read by the measured preset,
and a simulated bench measurement of the lens (another pitch, background, read noise,
sub-pixel offset, 12-bit quantisation) read back into a camera with the design's PSF."""

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage

from optics import Camera
from optics.bench import simulate_bench_measurement
from optics.export import export_lens
from optics.measured_psf import centroid_px

# an asymmetric lens whose PSF stays on its 32-pixel window (as the PSF mask loss keeps a
# trained lens's): a PSF spilling past the window has a centroid the window cannot show
COEFFS = {4: 0.15, 5: 0.1, 7: 0.05, 8: -0.03, 11: 0.03}


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


@pytest.fixture
def design(small_lens_kwargs):
    options = {**small_lens_kwargs, "psf_size_px": 32, "sensor_pitch_um": 8.0}
    return Camera("privacy", initial_coefficients_um=COEFFS, **options).eval()


def measured_camera(design: Camera, psf_file, **options) -> Camera:
    return Camera({**design.config.to_dict(), "preset": "measured", "psf_file": str(psf_file),
                   **options})  # fmt: skip


def test_exported_psf_reads_back_as_the_design(design, tmp_path):
    export_lens(design, tmp_path / "lens", levels=(4,), monte_carlo=0, quick=True)
    camera = measured_camera(design, tmp_path / "lens" / "psf.npz")
    with torch.no_grad():
        assert torch.allclose(camera.psf(), design.psf(), atol=1e-7)
        scenes = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        gen = [torch.Generator().manual_seed(1) for _ in range(2)]
        assert torch.allclose(camera(scenes, gen[0]), design(scenes, gen[1]), atol=1e-5)


def test_simulated_bench_measurement_round_trip(design, tmp_path):
    frame = simulate_bench_measurement(
        design.lens, pitch_um=5.3, size_px=64, offset_px=(2.37, -3.81), background_dn=90,
        read_noise_dn=2.0, bits=12, seed=0,
    )  # fmt: skip
    assert frame.dtype == np.uint16 and frame.max() <= 4095 and frame.min() >= 0
    tifffile.imwrite(tmp_path / "bench.tif", np.moveaxis(frame, 0, -1))
    camera = measured_camera(
        design, tmp_path / "bench.tif", psf_pitch_um=5.3, psf_saturation_level=4095
    )
    with torch.no_grad():
        made, ideal = camera.psf().numpy(), design.psf().numpy()
    # the bench cannot know the optical axis: the measured PSF sits on its centroid, so it is
    # compared with the design's moved onto its own centroid
    row, col = centroid_px(ideal.astype(np.float64))
    shift = (16 - row, 16 - col)
    aligned = np.stack([ndimage.shift(p, shift, order=1, mode="constant") for p in ideal])
    assert correlation(made, aligned) >= 0.99
    for m, a in zip(made, aligned, strict=True):
        assert correlation(m, a) >= 0.99
    # a clipped peak is refused: the same frame exposed 4× too long
    clipped = np.clip(frame.astype(np.int64) * 4, 0, 4095).astype(np.uint16)
    tifffile.imwrite(tmp_path / "clipped.tif", np.moveaxis(clipped, 0, -1))
    with pytest.raises(ValueError, match="full scale 4095"):
        measured_camera(
            design, tmp_path / "clipped.tif", psf_pitch_um=5.3, psf_saturation_level=4095
        )

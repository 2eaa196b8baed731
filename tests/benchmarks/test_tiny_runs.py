"""The benchmarks run end to end at tiny sizes on the CPU and print their JSON record (the keys
the results tables read); ``--help`` of each is in test_gpu_check.py. bench_optics's CLI has no
valid tiny grid (its lens is the 25 mm default), so its steps run on the small test lens."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"

TINY = {
    "bench_attackers": (
        [
            "--pairs",
            "12",
            "--epochs",
            "2",
            "--image-size",
            "32",
            "--cap",
            "2400",
            "--max-epochs",
            "10",
            "--cameras",
            "2",
        ],
        {"attackers", "projection", "seconds"},
    ),
    "bench_attacks": (
        ["--size", "16", "--batch", "2", "--psf", "5", "--repeats", "1"],
        {"skimage_loop_images_per_s", "torch_cpu_images_per_s", "max_abs_diff_vs_skimage"},
    ),
    "bench_captioning": (
        [
            "--device",
            "cpu",
            "--backbone",
            "resnet18",
            "--batch",
            "2",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--image-size",
            "64",
            "--vocab-size",
            "20",
            "--beam-size",
            "2",
        ],
        {"train_images_per_s", "beam_images_per_s"},
    ),
    "bench_train_step": (
        [
            "--device",
            "cpu",
            "--batch",
            "2",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--backbone",
            "resnet18",
            "--image",
            "32",
            "--cnn",
            "64",
            "--vocab",
            "20",
        ],
        set(),
    ),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_run_prints_a_json_record(name, capsys):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    argv, keys = TINY[name]
    importlib.import_module(name).main(argv)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    record = json.loads(lines[-1])
    assert keys <= set(record), sorted(record)


def test_bench_optics_steps_on_the_small_lens(small_lens_kwargs):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    bench_optics = importlib.import_module("bench_optics")
    options = {
        k: v
        for k, v in small_lens_kwargs.items()
        if k not in ("pupil_grid", "num_zernike", "psf_size_px")
    }
    camera = bench_optics.build_camera("cpu", 64, 15, 32, **options)
    steps = bench_optics.make_optics_steps(camera, batch=1, image=32, device="cpu")
    assert set(steps) >= {"psf_forward", "image_formation_forward_backward"}
    for step in steps.values():
        step()
    baseline = bench_optics.BaselinePSF(camera.lens)
    import torch

    with torch.no_grad():
        corr = torch.corrcoef(torch.stack([camera.lens().flatten(), baseline().flatten()]))[0, 1]
    assert float(corr) > 0.999  # the unoptimised reference computes the same PSF


def test_band_ssim_filters_by_frequency_and_reads_a_lens(small_camera, capsys):
    """The ideal low-pass keeps a cosine at or below its cutoff and removes one above it (the
    closed form); band SSIM is low for the lowest band and high at Nyquist; a lens's MTF is at
    most 1 and its band inside Nyquist; a camera without a lens has none."""
    import torch

    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    band = importlib.import_module("band_ssim")
    x = torch.arange(32, dtype=torch.float64)
    wave = 0.5 + 0.25 * torch.cos(2 * torch.pi * 4 / 32 * x)[None, None, None, :].expand(
        1, 3, 32, 32
    )
    torch.testing.assert_close(band.lowpass(wave, 4 / 32), wave)  # 0.125 cycles/px kept
    torch.testing.assert_close(band.lowpass(wave, 3 / 32), torch.full_like(wave, 0.5))  # removed
    record = band.main(["--images", "4", "--image-size", "32"])
    values = list(record["band_ssim"].values())
    assert values[0] < 0.7 < values[-1]  # the lowest band alone is far from the scene
    lens = band.lens_band(small_camera.eval())
    assert lens["mtf"]["0.0312"] <= 1.0 + 1e-9 and 0 < lens["band_2pct_cyc_px"] <= 0.5
    assert band.lens_band(type(small_camera)("ideal"))["mtf"] is None
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["benchmark"] == "band_ssim"


def test_band_shapes_captions_low_passed_scenes_per_cutoff(
    tiny_cli_args, tiny_data_root, tmp_path, capsys
):
    """One record per cutoff (and the unfiltered scenes): shape F1 and grounding F1 of the
    checkpoint's captions against the ground truth, and the band SSIM, which grows with the
    cutoff and is the SSIM of the scene itself (1) without a filter."""
    from train import cli_main

    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    argv = tiny_cli_args(tiny_data_root, tmp_path, "--model.camera.preset", "ideal",
                         "--trainer.max_steps", "1", "--trainer.max_epochs", "1")  # fmt: skip
    cli_main(["fit", *argv])
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))
    bench = importlib.import_module("band_shapes")
    record = bench.main(["--ckpt", str(ckpt), "--cutoffs", "0.0625,0.25", "--beam", "1"])
    rows = record["cutoffs"]
    assert list(rows) == ["0.0625", "0.2500", "inf"]
    assert rows["0.0625"]["band_ssim"] < rows["0.2500"]["band_ssim"] < rows["inf"]["band_ssim"]
    assert rows["inf"]["band_ssim"] == pytest.approx(1.0)
    for row in rows.values():
        assert row["images"] == 10 and 0 <= row["shape_f1"] <= 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["benchmark"] == "band_shapes"
    with pytest.raises(SystemExit):
        bench.main(["--ckpt", str(ckpt), "--cutoffs", "0.9"])


def test_bench_attackers_projects_the_protocol_at_its_epoch_cap(capsys):
    """The projection is the closed form Σ levels × epochs × seconds per pair-epoch, over the
    protocol's own doubling levels (the cap tried last); bad options are named."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    bench = importlib.import_module("bench_attackers")
    out = bench.projection({"unet": 1e-3, "deblurgan": 2e-3}, 600, 2000, 10, 7)
    assert out["levels"] == [600, 1200, 2000]
    assert out["level_seconds_at_cap"]["unet"]["1200"] == pytest.approx(12.0)
    assert out["per_camera_seconds_at_cap"] == pytest.approx({"unet": 38.0, "deblurgan": 76.0})
    assert out["study_hours_at_cap"] == pytest.approx((38 + 76) * 7 / 3600)
    for argv, named in [(["--attackers", "unet,mystery"], "--attackers"),
                        (["--cap", "100"], "--cap 100"), (["--pairs", "5"], "--pairs 5"),
                        (["--max-epochs", "2"], "--max-epochs 2")]:  # fmt: skip
        with pytest.raises(SystemExit):
            bench.main(argv)
        assert named in capsys.readouterr().err

"""`make demo`'s per-camera training arguments (the full run is tests/e2e/test_demo_report.py)."""

from __future__ import annotations

from pathlib import Path

from captioning.demo import DEMO_CAMERAS, demo_argv


def test_every_camera_is_one_trainer_run() -> None:
    for camera in DEMO_CAMERAS:
        argv = demo_argv(camera, "configs/demo.yaml", Path("runs/demo") / camera)
        assert argv[:3] == ["fit", "--config", "configs/demo.yaml"]
        preset = argv[argv.index("--model.camera.preset") + 1]
        assert preset == ("ideal" if camera == "blind" else camera)
        assert ("--model.blind" in argv) == (camera == "blind")
        assert argv[argv.index("--trainer.default_root_dir") + 1] == str(Path("runs/demo") / camera)


def test_report_gets_the_tradeoff_of_the_attacked_cameras(tmp_path: Path) -> None:
    import json

    from captioning.demo import _demo_tradeoff

    assert _demo_tradeoff(tmp_path) == []  # no attacks run: no section
    (tmp_path / "comparison.csv").write_text(
        "camera,CIDEr-D,grounding_f1\nprivacy,150,0.45\nideal,120,0.44\nblind,38,0.17\n"
    )
    for camera, ssim in (("privacy", 0.38), ("ideal", 0.97)):
        folder = tmp_path / f"attacks_{camera}"
        folder.mkdir()
        rows = [
            {
                "name": "captured",
                "ssim": {"mean": ssim},
                "psnr": {"mean": 20.0},
                "reid": {"top1": 0.05, "chance": 0.05},
            }
        ]
        (folder / "attack_results.json").write_text(json.dumps({"rows": rows}))
    section = "\n".join(_demo_tradeoff(tmp_path))
    assert "## Privacy–utility trade-off" in section and "tradeoff.png" in section
    assert "| privacy | 0.450 | 150.0 | captured | 0.380 |" in section
    assert "| ideal | 0.440 | 120.0 | captured | 0.970 |" in section
    assert (tmp_path / "tradeoff.png").stat().st_size > 0

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

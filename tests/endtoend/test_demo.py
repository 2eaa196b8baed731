"""`make demo`'s per-camera arguments (the full run: tests/endtoend/test_demo_report.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from endtoend.demo import ADVERSARY_CONFIG, DEMO_CAMERAS, DEMO_OPTIONS, demo_run
from endtoend.train_run import option_args


def test_every_camera_is_one_trainer_run() -> None:
    for camera in DEMO_CAMERAS:
        argv = demo_run(camera, "configs/demo.yaml", Path("runs/demo") / camera).args()
        assert argv[:3] == ["fit", "--config", "configs/demo.yaml"]
        preset = argv[argv.index("--model.camera.preset") + 1]
        assert preset == ("ideal" if camera == "blind" else camera)
        assert ("--model.blind" in argv) == (camera == "blind")
        assert argv[argv.index("--trainer.default_root_dir") + 1] == str(Path("runs/demo") / camera)


def test_a_typed_run_gives_lightningcli_the_arguments_in_order() -> None:
    """Config files and keys in the order given (a later --config overrides what came before),
    then init_from, epochs and seed: the arguments the demo passed when it built them by hand."""
    options = DEMO_OPTIONS["privacy"]
    run = demo_run("privacy", "configs/demo.yaml", Path("runs/demo/privacy"), options=options,
                   init_from="ideal.ckpt", max_epochs=2, seed=0)  # fmt: skip
    assert run.args() == [
        "fit", "--config", "configs/demo.yaml", "--model.camera.preset", "privacy",
        "--trainer.default_root_dir", "runs/demo/privacy", "--trainer.enable_progress_bar",
        "false", "--config", ADVERSARY_CONFIG, "--model.adversary_channels", "8",
        "--model.init_from", "ideal.ckpt", "--trainer.max_epochs", "2", "--seed_everything", "0",
    ]  # fmt: skip
    assert option_args([("model.blind", True), ("model.w_attack", 0.5)]) == [
        "--model.blind", "true", "--model.w_attack", "0.5",
    ]  # fmt: skip


def test_report_gets_the_tradeoff_of_the_attacked_cameras(tmp_path: Path) -> None:
    import json

    from endtoend.demo import _demo_tradeoff

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
    # a table from before shape F1 still loads: its shape F1 is n/a, and the report says why
    assert "| privacy | 0.450 | n/a | 150.0 | captured | 0.380 |" in section
    assert "| ideal | 0.440 | n/a | 120.0 | captured | 0.970 |" in section
    assert "shape F1 n/a: the caption table has no `shape_f1` column" in section
    assert (tmp_path / "tradeoff.png").stat().st_size > 0


def test_captions_grid_keeps_every_caption_legible() -> None:
    """Long captions wrap under their own capture: none overprints another, an image or a
    camera name (the old grid's titles ran into their neighbours)."""
    from endtoend.demo import CAPTION_LINES, captions_grid

    gen = torch.Generator().manual_seed(0)
    n, names = 3, ("ideal", "blind", "privacy", "defocus")
    long = "a large red circle to the left of a small blue star above a green square " * 2
    columns = [
        (name, torch.rand(n, 3, 8, 8, generator=gen), [long, "a face", long[: 40 + 10 * j]])
        for j, name in enumerate(names)
    ]
    fig = captions_grid(torch.rand(n, 3, 8, 8, generator=gen), columns)
    fig.canvas.draw()
    axes = fig.axes
    assert len(axes) == n * (len(names) + 1)
    titles = [ax.title for ax in axes if ax.get_title()]
    assert [t.get_text() for t in titles] == ["original", *names]  # once, over the top row
    captions = [ax for ax in axes if ax.get_xlabel()]
    assert len(captions) == n * len(names)  # every capture has one, the originals none
    boxes = [ax.xaxis.label.get_window_extent() for ax in captions]
    for ax, box in zip(captions, boxes, strict=True):
        label = ax.xaxis.label
        assert label.get_fontsize() >= 7
        assert label.get_text().count("\n") < CAPTION_LINES
        image = ax.get_window_extent()
        # below its own image and within its column
        assert box.y1 <= image.y0 and image.x0 <= (box.x0 + box.x1) / 2 <= image.x1
        assert not any(box.overlaps(other.get_window_extent()) for other in axes)
    others = boxes + [t.get_window_extent() for t in titles]
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(o) for k, o in enumerate(others) if k != i)
    import matplotlib.pyplot as plt

    plt.close(fig)

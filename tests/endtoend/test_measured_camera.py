"""The lens as made: a measured PSF in `train.py fit` (the design's captioner fine-tuned to it),
`evaluate.py captions --psf-file` (the design's captioner through it, no training), reload
without the file, and the design and the measured lens side by side in `compare`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import evaluate
from endtoend.checkpoints import load_model
from endtoend.train_cli import cli_main

pytestmark = pytest.mark.slow  # two short fits through the CLI

SHORT = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")


def test_measured_psf_through_fit_captions_and_compare(
    tiny_cli_args, tiny_data_root: Path, tmp_path: Path, capsys
) -> None:
    design_dir = tmp_path / "design"
    cli_main(["fit", *tiny_cli_args(tiny_data_root, design_dir, *SHORT)])
    design = design_dir / "checkpoints" / "last.ckpt"
    module, _ = load_model(design)
    with torch.no_grad():
        psf = module.camera.eval().psf().numpy()
    pitch = module.camera.lens.sensor_pitch_um
    bench = tmp_path / "bench.npz"  # the design's PSF as the export writes it (psf.npz)
    np.savez(bench, psf=psf, pitch_um=pitch, background=0.0, axis_px=[16, 16])

    # the design's captioner through the measured PSF (no training): same PSF, same captions
    argv = ["captions", "--ckpt", str(design), "--beam", "1", "--out", str(tmp_path / "ev_d")]
    assert evaluate.main(argv) == 0
    argv_m = ["captions", "--ckpt", str(design), "--beam", "1", "--out", str(tmp_path / "ev_m"),
              "--psf-file", str(bench)]  # fmt: skip
    assert evaluate.main(argv_m) == 0
    out = capsys.readouterr().out
    assert "| measured |" in out and "| privacy |" in out
    d = (tmp_path / "ev_d" / "captions_test_results.json").read_text()
    m = (tmp_path / "ev_m" / "captions_test_results.json").read_text()
    assert d == m  # the PSF read back is the design's: every caption the same

    # fine-tune the design's captioner to the lens as made
    made_dir = tmp_path / "made"
    extra = ("--model.camera.preset", "measured", "--model.camera.psf_file", str(bench),
             "--model.init_from", str(design), *SHORT)  # fmt: skip
    cli = cli_main(["fit", *tiny_cli_args(tiny_data_root, made_dir, *extra)])
    assert not [p for p in cli.model.camera.parameters() if p.requires_grad]
    made = made_dir / "checkpoints" / "last.ckpt"
    bench.unlink()  # the checkpoint carries the PSF
    rebuilt, raw = load_model(made)
    assert raw["hyper_parameters"]["camera"]["preset"] == "measured"
    assert np.allclose(rebuilt.camera.psf().numpy(), psf, atol=1e-6)  # the design PSF as it was
    assert evaluate.main(["compare", str(design), str(made), "--out", str(tmp_path / "cmp"),
                          "--beam", "1"]) == 0  # fmt: skip
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "measured" in table and "privacy" in table

    # the file is gone and nothing carries the PSF: a fresh run says so before training
    with pytest.raises(FileNotFoundError, match=r"bench.npz does not exist"):
        cli_main(["fit", *tiny_cli_args(tiny_data_root, tmp_path / "x", *extra)])
    assert evaluate.main([*argv_m[:-2], "--psf-file", str(bench)]) == 2
    assert "bench.npz does not exist" in capsys.readouterr().err

"""2-process DDP on CPU (gloo) and kill-and-resume, each through the real `train.py` CLI."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # trains models: minutes on CPU

REPO = Path(__file__).resolve().parents[2]


def _run(args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res.stdout + res.stderr


def _last_metrics(run_dir: Path) -> dict[str, float]:
    newest = max(run_dir.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    rows = list(csv.DictReader((newest / "csv" / "metrics.csv").open()))
    merged: dict[str, float] = {}
    for row in rows:
        merged.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return merged


def test_ddp_two_processes_match_single_process(tiny_cli_args, tiny_data_root, tmp_path):
    common = [
        "--model.camera.read_noise_std",
        "0",
        "--data.max_eval_images",
        "9",
        "--data.eval_batch_size",
        "3",
        "--trainer.accelerator",
        "cpu",
        # min–max: an in-loop attacker whose gradients the module itself averages over ranks
        *("--model.adversary", "unet", "--model.w_adversary", "0.5"),
        *("--model.adversary_channels", "4", "--model.adversary_depth", "2"),
    ]
    run = tmp_path / "ddp"
    out = _run(
        [
            "fit",
            *tiny_cli_args(tiny_data_root, run, *common),
            "--trainer.devices",
            "2",
            "--trainer.strategy",
            "ddp",
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "2",
            # the attacker pre-trains first: its gradients and its epoch score averaged too
            *("--model.adversary_pretrain_epochs", "2", "--model.adversary_pretrain_patience", "9"),
        ]
    )
    assert "lens coefficients identical on 2 ranks" in out
    assert "in-loop attacker identical on 2 ranks" in out
    assert "in-loop attacker pre-trained: 2 epochs" in out
    adversary = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["adversary"]
    assert adversary["updates"] == 2 * 2 + 2  # per rank: 2 epochs of 2 batches, 2 lens steps
    history = adversary["pretrain"]["history"]  # images summed over 2 ranks × 2 batches of 8
    assert [row["images"] for row in history] == [2 * 2 * 8] * 2
    # 9 images over 2 ranks: the sampler pads one duplicate, the gather removes it
    assert _last_metrics(run)["val/num_images"] == 9
    ckpt = run / "checkpoints" / "last.ckpt"
    metrics = {}
    for devices in ("1", "2"):
        vrun = tmp_path / f"validate_{devices}"
        extra = ["--trainer.devices", devices, "--ckpt_path", str(ckpt)]
        if devices == "2":
            extra += ["--trainer.strategy", "ddp"]
        _run(["validate", *tiny_cli_args(tiny_data_root, vrun, *common), *extra])
        metrics[devices] = _last_metrics(vrun)
    for key in (
        "val/num_images",
        "val/CIDEr",
        "val/BLEU-4",
        "val/ssim",
        "val/psnr",
        "val/adversary_ssim",
    ):
        assert metrics["1"][key] == pytest.approx(metrics["2"][key], rel=1e-5), key


def test_killed_run_resumes_with_step_optimizer_and_scheduler(
    tiny_cli_args, tiny_data_root, tmp_path
):
    args = tiny_cli_args(
        tiny_data_root,
        tmp_path,
        "--checkpoint.every_n_train_steps",
        "1",
        *("--model.adversary", "unet", "--model.w_adversary", "0.5"),
        *("--model.adversary_channels", "4", "--model.adversary_depth", "2"),
        "--trainer.max_epochs",
        "50",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "train.py", "fit", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    last = tmp_path / "checkpoints" / "last.ckpt"
    step, deadline = 0, time.time() + 300
    try:
        while step < 4 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                step = torch.load(last, weights_only=False)["global_step"] if last.exists() else 0
            except Exception:  # being written right now
                continue
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a hard kill, mid-epoch (an epoch is 5 steps)
        proc.wait()
    assert step >= 4, proc.stderr.read().decode()[-3000:]
    killed = torch.load(last, weights_only=False)
    k = killed["global_step"]
    assert killed["optimizer_states"][0]["state"][0]["step"] == k
    assert killed["adversary"]["updates"] == k  # the in-loop attacker: one update per step

    _run(
        [
            "fit",
            *args[:-2],
            "--trainer.max_epochs",
            "50",
            "--trainer.max_steps",
            str(k + 3),
            "--ckpt_path",
            "last",
        ]
    )
    resumed = torch.load(last, weights_only=False)
    assert resumed["global_step"] == k + 3
    # Adam's per-parameter step count and the LR schedule continued rather than restarting
    assert resumed["optimizer_states"][0]["state"][0]["step"] == k + 3
    assert resumed["lr_schedulers"][0]["last_epoch"] == k + 3
    assert resumed["adversary"]["optimizer"]["state"][0]["step"] == k + 3
    newest = max(tmp_path.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    steps = [int(r["step"]) for r in csv.DictReader((newest / "csv" / "metrics.csv").open())]
    assert min(steps) >= k

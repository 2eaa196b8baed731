"""Min–max lens training against an in-loop attacker (model.adversary, attacks.adversary)."""

import csv

import pytest
import torch

from train import cli_main

pytestmark = pytest.mark.slow  # trains models: minutes on CPU

ONLY_ADVERSARY = [
    "--model.w_dec", "0", "--model.w_distortion", "0", "--model.w_psf_mask", "0",
    "--model.w_attack", "0", "--model.w_scene_labels", "0", "--model.camera.read_noise_std", "0",
]  # fmt: skip


@pytest.mark.parametrize("kind", ["unet", "wiener_unet"])
def test_adversary_term_alone_lowers_the_attackers_ssim(
    kind, tiny_cli_args, tiny_data_root, tmp_path
):
    cli = cli_main(tiny_cli_args(
        tiny_data_root, tmp_path, *ONLY_ADVERSARY, "--model.adversary", kind,
        "--model.w_adversary", "1", "--model.adversary_channels", "4",
        "--model.adversary_depth", "2",
    ), run=False)  # fmt: skip
    model = cli.model
    batch = next(iter(cli.datamodule.train_dataloader()))
    lens = [p for p in model.camera.parameters() if p.requires_grad]
    opt = torch.optim.Adam(lens, lr=0.005)
    history = []
    for _ in range(6):  # the attacker is fixed here: only the lens moves
        torch.manual_seed(0)
        terms = model.losses(batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        history.append(float(terms["adversary_ssim"].detach()))
        assert all(p.grad is None for p in model._adversary.net.parameters())
    assert history[-1] < history[0] - 0.01, history


def test_in_loop_adversary_alternates_checkpoints_and_resumes(
    tiny_cli_args, tiny_data_root, tmp_path
):
    args = tiny_cli_args(
        tiny_data_root, tmp_path, "--model.adversary", "unet", "--model.w_adversary", "0.5",
        "--model.adversary_warmup_steps", "1", "--model.adversary_steps", "2",
        "--model.adversary_channels", "4", "--model.adversary_depth", "2",
        "--trainer.max_epochs", "5", "--trainer.limit_train_batches", "2",
        "--data.max_eval_images", "5",
    )  # fmt: skip
    cli_main(["fit", *args, "--trainer.max_steps", "2"])
    last = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["global_step"] == 2
    assert ckpt["optimizer_states"][0]["state"][0]["step"] == 2  # lens + captioner: 2 steps
    adv = ckpt["adversary"]
    assert adv["updates"] == 4 and adv["optimizer"]["state"][0]["step"] == 4  # 2 per lens step
    assert not any(k.startswith("_adversary") for k in ckpt["state_dict"])

    cli = cli_main(["fit", *args, "--trainer.max_steps", "4", "--ckpt_path", "last"])
    resumed = torch.load(last, weights_only=False)
    assert resumed["global_step"] == 4 and resumed["adversary"]["updates"] == 8
    assert resumed["adversary"]["optimizer"]["state"][0]["step"] == 8  # continued, not reset
    assert resumed["lr_schedulers"][0]["last_epoch"] == 4
    assert "train/adversary_ssim" in cli.trainer.callback_metrics  # on after the warm-up
    newest = max(tmp_path.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    header = (newest / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "val/adversary_ssim" in header and "val/wiener_ssim" in header
    row = [
        r
        for r in csv.DictReader((newest / "csv" / "metrics.csv").open())
        if r.get("val/adversary_ssim")
    ][-1]
    assert 0 < float(row["val/adversary_ssim"]) < 1


def test_adversary_options_are_checked(tiny_cli_args, tiny_data_root, tmp_path):
    with pytest.raises(ValueError, match=r"model\.adversary must be one of"):
        cli_main(tiny_cli_args(tiny_data_root, tmp_path, "--model.adversary", "gan"), run=False)
    with pytest.raises(ValueError, match="w_adversary > 0 needs an attacker"):
        cli_main(tiny_cli_args(tiny_data_root, tmp_path, "--model.w_adversary", "1"), run=False)


def test_attacker_pretrains_on_the_frozen_lens_then_resumes_its_pretraining(
    tiny_cli_args, tiny_data_root, tmp_path
):
    args = tiny_cli_args(
        tiny_data_root, tmp_path, "--model.adversary", "unet", "--model.w_adversary", "0.5",
        "--model.adversary_channels", "4", "--model.adversary_depth", "2",
        "--model.adversary_pretrain_patience", "50", "--trainer.limit_train_batches", "2",
        "--data.max_eval_images", "5", "--trainer.max_steps", "1",
    )  # fmt: skip
    start = cli_main(args, run=False).model.camera.lens.coefficients_um().detach()
    cli_main(["fit", *args, "--model.adversary_pretrain_epochs", "1"])
    saved = torch.load(tmp_path / "checkpoints" / "adversary_pretrain.pt", weights_only=False)
    first = saved["adversary"]["pretrain"]["history"]
    assert len(first) == 1 and first[0]["images"] > 0 and 0 < first[0]["ssim"] < 1
    # the file is keyed by the starting lens (a rerun from another lens starts afresh)
    assert saved["key"]["lens_um"] == pytest.approx(start.flatten().tolist(), abs=1e-8)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["adversary"]["updates"] == 2 + 1  # 2 pre-training batches, then 1 lens step
    assert ckpt["adversary"]["pretrain"]["done"]

    # a rerun in the same folder (an interrupted or extended pre-training) continues from it
    cli = cli_main(["fit", *args, "--model.adversary_pretrain_epochs", "3"])
    history = cli.model._adversary.pretrain_history
    assert len(history) == 3 and history[0] == first[0]
    assert cli.model._adversary.updates == 3 * 2 + 1

    # another attacker (here: another width) does not resume from that file
    cli = cli_main(["fit", *args, "--model.adversary_pretrain_epochs", "1",
                    "--model.adversary_channels", "2"])  # fmt: skip
    assert len(cli.model._adversary.pretrain_history) == 1


def test_pretrain_options_are_checked(tiny_cli_args, tiny_data_root, tmp_path):
    with pytest.raises(ValueError, match="adversary_pretrain_epochs > 0 pre-trains"):
        cli_main(
            tiny_cli_args(tiny_data_root, tmp_path, "--model.adversary_pretrain_epochs", "2"),
            run=False,
        )
    with pytest.raises(ValueError, match=r"model\.adversary_pretrain_patience must be"):
        cli_main(
            tiny_cli_args(
                tiny_data_root, tmp_path, "--model.adversary", "unet",
                "--model.adversary_pretrain_patience", "0",
            ),
            run=False,
        )  # fmt: skip


def test_pretrain_key_is_one_starting_captioner_however_spelled(
    tiny_cli_args, tiny_data_root, tmp_path, monkeypatch
):
    from endtoend.adversary_pretrain import pretrain_key

    monkeypatch.chdir(tmp_path)
    base = tiny_cli_args(tiny_data_root, tmp_path, "--model.adversary", "unet")
    keys = [
        pretrain_key(cli_main([*base, "--model.init_from", path], run=False).model)
        for path in ("ideal.ckpt", str(tmp_path / "ideal.ckpt"), "other.ckpt")
    ]
    assert keys[0] == keys[1] != keys[2]

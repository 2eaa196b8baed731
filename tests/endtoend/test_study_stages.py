"""endtoend.study: the settings are checked by name before anything trains (the full run on
tiny data is tests/endtoend/test_study.py)."""

from __future__ import annotations

import pytest

from endtoend.study import StudySettings


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lenses": ("published", "mystery")}, "--lenses"),
        ({"lenses": ()}, "--lenses"),
        ({"references": ("pinhole",)}, "--references"),
        ({"config": "nowhere.yaml"}, "--train-config nowhere.yaml"),
        ({"init_from": "nowhere.ckpt"}, "--init-from nowhere.ckpt"),
        ({"attacks": "wienr"}, "wienr"),
        ({"strength_curve": "1,all"}, "strength curve point"),
        ({"strength_attacker": "wiener"}, "--strength-attacker"),
        ({"max_images": 3}, "--max-images 3"),
        ({"saturate": True, "saturate_cap": 100}, "--saturate-cap 100 is below"),
        ({"saturate": True, "patience": 9, "saturate_max_epochs": 9}, "must exceed --patience"),
    ],
)
def test_bad_settings_are_refused_by_name(change, message):
    settings = StudySettings(**change)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        settings.check()


def test_the_wide_support_lens_trains_longer_with_its_own_mask(tmp_path, monkeypatch):
    from endtoend import study

    seen = {}
    ideal = tmp_path / "ideal.ckpt"
    ideal.write_bytes(b"weights")  # fingerprinted by content
    monkeypatch.setattr(
        study, "_train", lambda run, record, what: seen.update(argv=run.args(), record=record)
    )
    study._lens(tmp_path, "adversary_wide", str(ideal), StudySettings(lens_epochs=3))
    argv = seen["argv"]
    assert argv[argv.index("--model.psf_mask_radius_px") + 1] == "24"
    assert argv[argv.index("--trainer.max_epochs") + 1] == "6"
    assert seen["record"]["lens_epochs"] == 6  # a rerun with other epochs is refused
    study._lens(tmp_path, "adversary", str(ideal), StudySettings(lens_epochs=3))
    assert seen["record"]["lens_epochs"] == 3 and "preset" not in seen["record"]
    # a reference camera: its own preset from the same captioner, none of the lens options
    study._lens(tmp_path, "defocus", str(ideal), StudySettings(lens_epochs=3))
    argv = seen["argv"]
    assert argv[argv.index("--model.camera.preset") + 1] == "defocus"
    assert "--config" in argv and argv.count("--config") == 1  # the base config only
    assert argv[argv.index("--model.init_from") + 1] == str(ideal)
    assert seen["record"]["preset"] == "defocus" and seen["record"]["lens_epochs"] == 3


def test_fresh_attackers_of_a_longer_trained_lens_train_longer(tmp_path, monkeypatch):
    """A lens trained k× as long met its in-loop attacker k× as often; its fresh attackers get
    k× the epochs so they still see more pairs than the attacker the lens was trained against."""
    import endtoend.evaluation
    from endtoend import study

    monkeypatch.setattr(study, "_captioners", lambda out, s: ("ideal.ckpt", None))
    monkeypatch.setattr(study, "_lens", lambda out, lens, ideal, s: f"{lens}.ckpt")
    planned = {}

    def check(folder, ckpt, attacks, s, curve, epochs, check_only=False):
        planned[folder.name] = epochs
        return folder

    def stop(ckpts, out, split, beam, names):
        lenses = {f"{k}.ckpt": f"privacy ({k})" for k in ("adversary", "adversary_wide")}
        assert names == {**lenses, "defocus.ckpt": "defocus", "lowres.ckpt": "lowres"}
        raise InterruptedError  # every attack folder is checked before the captions

    monkeypatch.setattr(study, "_attack", check)
    monkeypatch.setattr(endtoend.evaluation, "compare", stop)
    settings = StudySettings(lenses=("adversary", "adversary_wide"), epochs=7)
    with pytest.raises(InterruptedError):
        study.run_study(tmp_path, settings)
    assert planned == {"attacks_ideal": 7, "attacks_adversary": 7, "attacks_adversary_wide": 14,
                       "attacks_defocus": 7, "attacks_lowres": 7}  # fmt: skip
    text = study.study_markdown(settings, {}, {}, "", {})
    assert "for 7 epochs (adversary_wide: 14)" in text


def test_a_saturating_study_passes_the_protocol_on_and_keeps_an_unfinished_attack(
    tmp_path, monkeypatch
):
    """With --saturate the attack stage gets the protocol's options (no strength curve: each
    attacker measures its own), and an interrupted attack folder is kept for it to resume."""
    import attacks.cli
    from endtoend import study

    ckpt = tmp_path / "lens.ckpt"
    ckpt.write_bytes(b"weights")
    monkeypatch.setattr(
        "endtoend.checkpoints.training_checkpoint",
        lambda path: {"datamodule_hyper_parameters": {"image_size": 32, "root": "data/x"}},
    )
    seen = {}

    def run(args, raw):
        seen["args"] = args
        raise KeyboardInterrupt  # cut off mid-attack

    monkeypatch.setattr(attacks.cli, "run", run)
    folder = tmp_path / "attacks_adversary"
    (folder / "saturation" / "unet" / "600").mkdir(parents=True)
    settings = StudySettings(saturate=True, saturate_cap=2400, patience=2, device="cuda")
    with pytest.raises(KeyboardInterrupt):
        study._attack(folder, str(ckpt), "unet", settings, True, 10)
    args = seen["args"]
    assert args.saturate and args.saturate_cap == 2400 and args.patience == 2
    assert args.device == "cuda"  # a GPU box trains the attackers there
    assert args.images == "embedded"  # generated on demand, not the data root's 900 images
    assert args.strength_curve is None
    assert (folder / "saturation" / "unet" / "600").is_dir()  # kept: the levels resume
    with pytest.raises(KeyboardInterrupt):  # without --saturate the stage starts again
        study._attack(folder, str(ckpt), "unet", StudySettings(), True, 10)
    assert not (folder / "saturation").exists()
    assert seen["args"].saturate is False and seen["args"].strength_curve == "100,300,all"
    assert seen["args"].images == "data/x"


def test_config_is_the_commands_own_options_and_train_config_the_training_one(
    tmp_path, monkeypatch
):
    """`evaluate.py study|demo --config F` reads the command's options from YAML, as every
    subcommand; the LightningCLI config they train is --train-config."""
    import evaluate
    from endtoend import study

    seen = {}

    def fake_study(out, settings):
        seen["study"] = settings
        report = tmp_path / "study.md"
        report.write_text("")
        return report

    def fake_demo(out, config, presets, max_epochs, **kwargs):
        seen["demo"] = (config, presets, kwargs["lens_epochs"])
        report = tmp_path / "report.md"
        report.write_text("")
        return report

    monkeypatch.setattr(study, "run_study", fake_study)
    monkeypatch.setattr(evaluate, "run_demo", fake_demo)
    options = tmp_path / "options.yaml"
    options.write_text("lens_epochs: 3\nsaturate: true\npatience: 2\n")
    assert evaluate.main(["study", "--config", str(options), "--out", str(tmp_path / "s")]) == 0
    s = seen["study"]
    assert (s.lens_epochs, s.saturate, s.patience) == (3, True, 2)
    assert s.config.endswith("configs/demo.yaml")  # the default training config
    demo_options = tmp_path / "demo.yaml"
    demo_options.write_text("lens_epochs: 1\npresets: [ideal]\n")
    argv = ["demo", "--config", str(demo_options), "--train-config", "configs/demo.yaml"]
    assert evaluate.main([*argv, "--out", str(tmp_path / "d")]) == 0
    assert seen["demo"] == ("configs/demo.yaml", ["ideal"], 1)


@pytest.mark.parametrize("lens", ["adversary_wide", "adversary_band"])
def test_each_study_lens_variant_is_a_valid_training_command(
    lens, tiny_cli_args, tiny_data_root, tmp_path
):
    """The variants' options parse and reach the model (a typo would only fail hours into a
    study, at that lens's stage)."""
    from endtoend.study import STUDY_LENSES
    from endtoend.train_cli import cli_main
    from endtoend.train_run import option_args

    argv = option_args(STUDY_LENSES[lens])
    if lens == "adversary_wide":  # a 24 px support needs a PSF wider than the tiny 32 px
        argv += ["--model.camera.lens.psf_size_px", "64"]
    cli = cli_main(tiny_cli_args(tiny_data_root, tmp_path, *argv), run=False)
    assert cli.model.hparams.adversary == "wiener_unet"  # configs/adversary.yaml applied
    if lens == "adversary_band":
        assert cli.model.hparams.w_otf_band == 100.0
        assert cli.model.hparams.psf_mask_radius_px == 4  # the tiny camera's, not widened
    else:
        assert cli.model.hparams.psf_mask_radius_px == 24 and cli.model.hparams.w_otf_band == 0

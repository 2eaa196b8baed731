"""The attacker-budget protocol (``attacks.saturation``): when a doubling stops, the lower-bound
label, resume of an interrupted doubling, the pair pool, and one real run on tiny data."""

import copy

import numpy as np
import pytest
import torch

from attacks.saturation import (
    EmbeddedPool,
    SaturationConfig,
    doubling_levels,
    run_doubling,
    saturation_verdict,
)


def _point(n: int, ssim: float, stopped: str = "plateau") -> dict:
    return {"pairs": n, "ssim": {"mean": ssim, "std": 0.1, "n": 10}, "stopped": stopped}


class _Curve:
    """A fake attacker whose test SSIM at n pairs is ``curve(n)``; counts its trainings."""

    def __init__(self, curve, stopped="plateau", fail_at=None):
        self.curve, self.stopped, self.fail_at, self.calls = curve, stopped, fail_at, []

    def __call__(self, n: int) -> dict:
        self.calls.append(n)
        if n == self.fail_at:
            raise KeyboardInterrupt  # the session is cut off mid-level
        return _point(n, self.curve(n), self.stopped)


def test_levels_double_up_to_the_cap_and_end_on_it():
    assert doubling_levels(600, 19200) == [600, 1200, 2400, 4800, 9600, 19200]
    assert doubling_levels(600, 600) == [600]
    assert doubling_levels(100, 500) == [100, 200, 400, 500]


def test_a_run_that_keeps_gaining_does_not_stop(tmp_path):
    fit = _Curve(lambda n: 0.3 + 0.05 * np.log2(n / 10))  # +0.05 per doubling
    out = run_doubling(doubling_levels(10, 160), fit, 0.01, tmp_path)
    assert fit.calls == [10, 20, 40, 80, 160]  # every level trained
    assert out["status"] == "lower bound"
    assert "still gaining" in out["reason"] and "cap of 160 reached" in out["reason"]
    assert [p["gain"] for p in out["points"]][1] == pytest.approx(0.05)


def test_a_run_that_plateaus_stops_at_the_first_small_gain(tmp_path):
    values = {10: 0.30, 20: 0.40, 40: 0.405, 80: 0.5}
    fit = _Curve(values.__getitem__)
    out = run_doubling(doubling_levels(10, 80), fit, 0.01, tmp_path)
    assert fit.calls == [10, 20, 40]  # 80 never trained: 20 → 40 gained 0.005
    assert out["status"] == "saturated"
    assert "+0.0050" in out["reason"]


def test_a_small_gain_at_the_epoch_cap_is_not_saturation(tmp_path):
    fit = _Curve(lambda n: 0.4, stopped="epoch cap")  # flat, but every level cut short
    out = run_doubling(doubling_levels(10, 40), fit, 0.01, tmp_path)
    assert fit.calls == [10, 20, 40]
    assert out["status"] == "lower bound"
    assert "epoch cap" in out["reason"]
    assert saturation_verdict([_point(10, 0.4)], 0.01) == (
        False,
        "one level only: no doubling measured",
    )


def test_an_interrupted_doubling_resumes_without_retraining_finished_levels(tmp_path):
    curve = lambda n: 0.3 + 0.05 * np.log2(n / 10)  # noqa: E731
    first = _Curve(curve, fail_at=40)
    with pytest.raises(KeyboardInterrupt):
        run_doubling(doubling_levels(10, 80), first, 0.01, tmp_path)
    assert first.calls == [10, 20, 40]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10", "20"]  # 40 left nothing
    second = _Curve(curve)
    out = run_doubling(doubling_levels(10, 80), second, 0.01, tmp_path)
    assert second.calls == [40, 80]  # 10 and 20 read from their level.json
    assert [p["pairs"] for p in out["points"]] == [10, 20, 40, 80]
    # a higher cap later continues the same levels
    third = _Curve(curve)
    run_doubling(doubling_levels(10, 160), third, 0.01, tmp_path)
    assert third.calls == [160]


def test_a_finite_pool_ends_the_doubling_as_a_lower_bound(tmp_path):
    fit = _Curve(lambda n: 0.3 + n / 1000)
    out = run_doubling(doubling_levels(10, 160), fit, 0.01, tmp_path, available=50)
    assert fit.calls == [10, 20, 40, 50]
    assert out["status"] == "lower bound" and "pool ran out at 50 pairs" in out["reason"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start_pairs": 5}, "--saturate-start 5: at least 10"),
        ({"cap_pairs": 100}, "--saturate-cap 100 is below --saturate-start 600"),
        ({"min_gain": 0}, "--saturate-gain 0"),
        ({"patience": 5, "max_epochs": 5}, "must exceed --patience 5"),
    ],
)
def test_bad_protocol_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SaturationConfig(**kwargs)


def test_the_pool_makes_the_same_first_pairs_in_any_order_and_refuses_another_camera(
    tmp_path, small_camera
):
    from optics import Camera

    a = EmbeddedPool(small_camera, tmp_path / "a", 32, seed=3, chunk_pairs=4)
    cap_a, ori_a = a.get(10)  # chunks 0, 1, 2
    assert cap_a.shape == ori_a.shape == (10, 32, 32, 3) and cap_a.dtype == np.uint8
    assert sorted(p.name for p in (tmp_path / "a").glob("train_*.npz")) == [
        "train_0000.npz",
        "train_0001.npz",
        "train_0002.npz",
    ]
    b = EmbeddedPool(small_camera, tmp_path / "b", 32, seed=3, chunk_pairs=4)
    b._chunk(2)  # made out of order
    cap_b, ori_b = b.get(10)
    np.testing.assert_array_equal(cap_a, cap_b)
    np.testing.assert_array_equal(ori_a, ori_b)
    assert not np.array_equal(cap_a, ori_a)  # captured through the lens
    again = EmbeddedPool(small_camera, tmp_path / "a", 32, seed=3, chunk_pairs=4)
    np.testing.assert_array_equal(again.get(10)[0], cap_a)  # read back from disk
    assert again.seconds == 0.0
    trained = copy.deepcopy(small_camera)  # same config, another surface: a retrained lens
    with torch.no_grad():
        next(trained.parameters()).add_(0.05)
    with pytest.raises(ValueError, match=r"made with other settings \(PSF differ\).*another --out"):
        EmbeddedPool(trained, tmp_path / "a", 32, seed=3, chunk_pairs=4)
    other = Camera("privacy", **{**small_camera.config.to_dict(), "init_std_um": 0.05})
    with pytest.raises(ValueError, match=r"other settings \(camera, PSF differ\)"):
        EmbeddedPool(other, tmp_path / "a", 32, seed=3, chunk_pairs=4)


def test_saturation_mode_end_to_end_with_resume_and_labels(tmp_path, small_camera):
    """A real doubling (tiny U-Net, 32 px) through run_attacks: one level (a lower bound: no
    doubling measured), then a rerun with a higher cap that reads it and trains only the new
    level, the report's curve and verdict, and a refusal of other settings in the folder."""
    from attacks import run_attacks

    config = SaturationConfig(
        start_pairs=12, cap_pairs=12, patience=1, max_epochs=2, test_pairs=6, chunk_pairs=8
    )
    kwargs = dict(
        image_size=32,
        detect_faces=False,
        batch_size=4,
        attacker_options={"unet": {"base_channels": 4, "depth": 2}},
    )
    first = run_attacks(
        small_camera, "embedded", tmp_path, "wiener,unet", saturation=config, **kwargs
    )
    curve = first["learned"]["unet"]["saturation"]
    assert [p["pairs"] for p in curve["points"]] == [12] and curve["status"] == "lower bound"
    row = next(r for r in first["rows"] if r["name"] == "unet")
    assert row["n"] == 6 and first["settings"]["test_pairs"] == 6
    assert row["lower_bound"] is True and row["saturated"] is False
    assert "lower bound: not saturated at 12 pairs" in row["label"]
    level = tmp_path / "saturation" / "unet" / "12" / "level.json"
    stamp = level.stat().st_mtime_ns

    bigger = SaturationConfig(**{**config.to_dict(), "cap_pairs": 24})
    again = run_attacks(small_camera, "embedded", tmp_path, "unet", saturation=bigger, **kwargs)
    curve = again["learned"]["unet"]["saturation"]
    points = curve["points"]
    assert [p["pairs"] for p in points] == [12, 24]
    assert level.stat().st_mtime_ns == stamp  # the finished level was read, not retrained
    assert points[0]["ssim"] == first["learned"]["unet"]["saturation"]["points"][0]["ssim"]
    assert all(p["epochs"] <= 2 and p["stopped"] in ("plateau", "epoch cap") for p in points)
    assert points[1]["gain"] == pytest.approx(points[1]["ssim"]["mean"] - points[0]["ssim"]["mean"])
    assert sorted(p.name for p in (tmp_path / "saturation" / "pool").glob("*.npz")) == [
        "train_0000.npz",
        "train_0001.npz",
        "train_0002.npz",
    ]
    report = (tmp_path / "attack_report.md").read_text()
    assert "### Attacker budget to saturation" in report
    assert ("**saturated**" if curve["status"] == "saturated" else "**lower bound**") in report
    assert (tmp_path / "attack_strength.png").is_file()
    changed = SaturationConfig(**{**config.to_dict(), "patience": 2, "max_epochs": 3})
    with pytest.raises(ValueError, match="saturation levels trained with other settings"):
        run_attacks(small_camera, "embedded", tmp_path, "unet", saturation=changed, **kwargs)


def test_a_fixed_budget_learned_row_is_labelled_a_lower_bound(tmp_path, small_camera):
    from attacks import run_attacks

    result = run_attacks(
        small_camera,
        "embedded",
        tmp_path,
        "unet",
        image_size=32,
        max_images=12,
        epochs=1,
        detect_faces=False,
        attacker_options={"unet": {"base_channels": 4, "depth": 2}},
    )
    row = next(r for r in result["rows"] if r["name"] == "unet")
    assert row["lower_bound"] is True and row["saturated"] is None
    assert "saturation not tested" in row["budget"]
    report = (tmp_path / "attack_report.md").read_text()
    assert "| ≥ " in report and "≥ **lower bound**" in report


def test_early_stopping_ends_a_plateau_and_survives_a_resume(tmp_path, small_camera):
    """With a vanishing learning rate nothing improves after the first validation: patience 2
    ends training at epoch 3 ("plateau"), not at the 30-epoch cap; a run cut at its cap ("epoch
    cap") resumed with a larger cap keeps its validation history and its early-stopping count."""
    from attacks.pairs import simulate_pairs
    from attacks.scenes import make_embedded_set
    from attacks.training import train_attacker

    pairs = simulate_pairs(small_camera, make_embedded_set(12, 32, seed=0), None, seed=0)
    cap, ori = pairs.captures, pairs.originals
    # a learning rate of 1e-12 leaves the zero-initialised output layer at zero: the identity
    tiny = {"base_channels": 4, "depth": 2, "lr": 1e-12, "min_lr": 1e-12}
    _, info = train_attacker("unet", cap, ori, tmp_path / "a", epochs=30, patience=2, **tiny)
    assert (info["epochs"], info["stopped"], len(info["val_history"])) == (3, "plateau", 3)
    _, cut = train_attacker("unet", cap, ori, tmp_path / "b", epochs=2, patience=2, **tiny)
    assert (cut["epochs"], cut["stopped"]) == (2, "epoch cap")
    # last.ckpt is the last epoch even when it did not improve (Lightning >= 2.6's save_last
    # alone would have left the first epoch there, and the resume would redo the second)
    last = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 1
    _, resumed = train_attacker("unet", cap, ori, tmp_path / "b", epochs=30, patience=2, **tiny)
    assert resumed["resumed_from"] is not None
    assert (resumed["epochs"], resumed["stopped"]) == (3, "plateau")  # one more epoch, not two
    assert resumed["val_history"][:2] == cut["val_history"] and len(resumed["val_history"]) == 3
    assert len(info["epoch_seconds"]) == 3 and min(info["epoch_seconds"]) > 0  # one per epoch
    assert resumed["epoch_seconds"][:2] == cut["epoch_seconds"]
    assert len(resumed["epoch_seconds"]) == 3
    with pytest.raises(ValueError, match="patience must be >= 1"):
        train_attacker("unet", cap, ori, tmp_path / "c", epochs=2, patience=0, **tiny)

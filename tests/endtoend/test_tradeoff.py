"""Privacy–utility frontier (endtoend.tradeoff): which attack counts, joins, files."""

import csv
import json
import math

import pytest

from endtoend.tradeoff import (
    best_attack,
    load_attack_results,
    read_caption_rows,
    tradeoff_figure,
    tradeoff_points,
    write_tradeoff,
)


def _row(name, ssim, top1=0.05, converged=None, chance=0.05):
    row = {
        "name": name,
        "ssim": {"mean": ssim},
        "psnr": {"mean": 20.0},
        "reid": {"top1": top1, "chance": chance},
    }
    if converged is not None:
        row["converged"] = converged
    return row


RESULTS = {
    "rows": [
        _row("original", 1.0, 1.0),
        _row("captured", 0.36),
        _row("wiener", 0.38, 0.10),
        # run on fewer images: the highest raw re-ID, but only 3 points above its own chance
        _row("richardson_lucy", 0.30, 0.12, chance=0.09),
        # a learned attacker that ended below the identity on validation: not a threat
        _row("deblurgan", 0.90, 0.90, converged=False),
        _row("unet", 0.41, 0.05, converged=True),
    ]
}


def test_best_attack_ignores_the_original_and_unconverged_attackers():
    best, counted = best_attack(RESULTS)
    assert best["name"] == "unet"
    assert [r["name"] for r in counted] == ["captured", "wiener", "richardson_lucy", "unet"]
    # when every attack is weaker than doing nothing, the capture itself is the best attack
    weak = {"rows": [_row("captured", 0.36), _row("wiener", 0.30)]}
    assert best_attack(weak)[0]["name"] == "captured"
    with pytest.raises(ValueError, match="no attack rows"):
        best_attack({"rows": [_row("original", 1.0)]})


def test_points_join_captions_and_attacks(tmp_path):
    table = tmp_path / "comparison.csv"
    with table.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["camera", "CIDEr-D", "grounding_f1", "shape_f1"])
        w.writeheader()
        w.writerows(
            [
                {"camera": "privacy", "CIDEr-D": "90.5", "grounding_f1": "0.61", "shape_f1": "0.5"},
                {"camera": "blind", "CIDEr-D": "40", "grounding_f1": "0.17", "shape_f1": "0.25"},
            ]
        )
    results = tmp_path / "attack_results.json"
    results.write_text(json.dumps(RESULTS))
    captions = read_caption_rows(table)
    name, loaded = load_attack_results(f"privacy={results}")
    (point,) = tradeoff_points(captions, {name: loaded})
    assert (point.camera, point.best_attack, point.attack_ssim) == ("privacy", "unet", 0.41)
    assert point.grounding_f1 == 0.61 and point.cider_d == 90.5 and point.shape_f1 == 0.5
    # wiener: +5 points over its chance; R–L's 12 % is +3 over its smaller gallery's 9 %
    assert (point.max_reid_attack, point.max_reid_top1) == ("wiener", pytest.approx(0.10))
    assert point.reid_over_chance_points == pytest.approx(5.0)
    assert point.attacks_counted == 4 and not math.isnan(point.reid_chance)
    paths = write_tradeoff([point], tmp_path / "out", blind=captions["blind"])
    assert all(p.stat().st_size > 0 for p in paths.values())
    md = paths["md"].read_text()
    assert "| camera | grounding F1 | shape F1 | CIDEr-D | best attack |" in md
    assert "| privacy | 0.610 | 0.500 | 90.5 | unet | 0.410 |" in md
    assert "| wiener 10 % (5 %) |" in md
    assert "utility floor): shape F1 0.250, grounding F1 0.170, CIDEr-D 40.0." in md
    assert "n/a" not in md
    with paths["csv"].open() as fh:
        row = next(csv.DictReader(fh))
    assert float(row["reid_over_chance_points"]) == pytest.approx(5.0)
    assert float(row["shape_f1"]) == 0.5
    with pytest.raises(ValueError, match="no row in the caption table"):
        tradeoff_points(captions, {"defocus": loaded})


def test_figure_plots_shape_f1_with_the_blind_floor():
    """Shape F1 (what blur takes first) is the first utility axis, beside grounding F1 and
    CIDEr-D; the blind row's value is each panel's dashed floor."""
    import matplotlib.pyplot as plt

    captions = {"privacy": {"CIDEr-D": "90", "grounding_f1": "0.6", "shape_f1": "0.5"}}
    (point,) = tradeoff_points(captions, {"privacy": RESULTS})
    blind = {"CIDEr-D": "40", "grounding_f1": "0.17", "shape_f1": "0.25"}
    fig = tradeoff_figure([point], blind)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["shape F1", "grounding F1", "CIDEr-D", "shape F1"]
    floors = {"shape F1": 0.25, "grounding F1": 0.17, "CIDEr-D": 40.0}
    values = {"shape F1": 0.5, "grounding F1": 0.6, "CIDEr-D": 90.0}
    for ax in fig.axes:
        (line,) = ax.get_lines()  # the floor
        assert tuple(line.get_ydata()) == (floors[ax.get_ylabel()],) * 2
        assert ax.collections[0].get_offsets()[0][1] == pytest.approx(values[ax.get_ylabel()])
    assert fig.axes[0].get_xlabel().startswith("best attack SSIM")
    assert fig.axes[0].collections[0].get_offsets()[0][0] == pytest.approx(0.41)
    plt.close(fig)


def test_old_caption_tables_without_shape_f1_still_load(tmp_path):
    """Before shape_f1 existed: computed from shape P / R when the table has them, else n/a
    with the reason in tradeoff.md and an empty, labelled panel."""
    import matplotlib.pyplot as plt

    old = {"camera": "privacy", "CIDEr-D": "90", "grounding_f1": "0.6"}
    with_pr = {**old, "shape_precision": str(2 / 3), "shape_recall": "0.5"}
    (point,) = tradeoff_points({"privacy": with_pr}, {"privacy": RESULTS})
    assert point.shape_f1 == pytest.approx(4 / 7)
    # an empty precision cell (nothing named) is F1 0; an empty recall (nothing to find) n/a
    nothing_named = {**with_pr, "shape_precision": ""}
    assert tradeoff_points({"privacy": nothing_named}, {"privacy": RESULTS})[0].shape_f1 == 0.0
    nothing_to_find = {**with_pr, "shape_recall": ""}
    f1 = tradeoff_points({"privacy": nothing_to_find}, {"privacy": RESULTS})[0].shape_f1
    assert math.isnan(f1)
    (point,) = tradeoff_points({"privacy": old}, {"privacy": RESULTS})
    assert math.isnan(point.shape_f1)
    paths = write_tradeoff([point], tmp_path, blind={**old, "camera": "blind"})
    md = paths["md"].read_text()
    assert "| privacy | 0.600 | n/a | 90.0 | unet |" in md
    assert "shape F1 n/a: the caption table has no `shape_f1` column" in md
    assert "utility floor): shape F1 n/a, grounding F1 0.600" in md
    fig = tradeoff_figure([point], old)
    shape_panel = fig.axes[0]
    assert not shape_panel.collections and not shape_panel.get_lines()  # no point, no floor
    assert "shape F1 n/a in the caption table" in [t.get_text() for t in shape_panel.texts]
    plt.close(fig)


def test_bad_attack_specs_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="NAME=path"):
        load_attack_results("results.json")
    with pytest.raises(FileNotFoundError, match="privacy="):
        load_attack_results(f"privacy={tmp_path / 'missing.json'}")
    with pytest.raises(FileNotFoundError, match=r"comparison\.csv"):
        read_caption_rows(tmp_path / "none.csv")


def test_a_lower_bound_attacker_marks_the_cameras_privacy_figure(tmp_path):
    """One learned attacker not trained to saturation makes the camera's strongest-attack SSIM
    a lower bound, even when another attack is the strongest; saturated ones do not."""
    bounded = {**_row("unet", 0.35, converged=True), "lower_bound": True}
    saturated = {**_row("unet", 0.35, converged=True), "lower_bound": False}
    rows = [_row("captured", 0.36), _row("wiener", 0.38)]
    captions = {"privacy": {"camera": "privacy", "grounding_f1": "0.6", "shape_f1": "0.5"}}
    (low,) = tradeoff_points(captions, {"privacy": {"rows": [*rows, bounded]}})
    (sat,) = tradeoff_points(captions, {"privacy": {"rows": [*rows, saturated]}})
    assert low.best_attack == "wiener" and low.attack_lower_bound is True
    assert sat.attack_lower_bound is False
    md = write_tradeoff([low], tmp_path / "low")["md"].read_text()
    assert "| wiener | ≥ 0.380 |" in md and "≥ **lower bound**" in md
    md = write_tradeoff([sat], tmp_path / "sat")["md"].read_text()
    assert "≥" not in md

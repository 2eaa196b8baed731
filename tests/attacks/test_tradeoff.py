"""Privacy–utility frontier (attacks.tradeoff): which attack counts, joins, files."""

import csv
import json
import math

import pytest

from attacks.tradeoff import (
    best_attack,
    load_attack_results,
    read_caption_rows,
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
        w = csv.DictWriter(fh, fieldnames=["camera", "CIDEr-D", "grounding_f1"])
        w.writeheader()
        w.writerows(
            [
                {"camera": "privacy", "CIDEr-D": "90.5", "grounding_f1": "0.61"},
                {"camera": "blind", "CIDEr-D": "40", "grounding_f1": "0.17"},
            ]
        )
    results = tmp_path / "attack_results.json"
    results.write_text(json.dumps(RESULTS))
    captions = read_caption_rows(table)
    name, loaded = load_attack_results(f"privacy={results}")
    (point,) = tradeoff_points(captions, {name: loaded})
    assert (point.camera, point.best_attack, point.attack_ssim) == ("privacy", "unet", 0.41)
    assert point.grounding_f1 == 0.61 and point.cider_d == 90.5
    # wiener: +5 points over its chance; R–L's 12 % is +3 over its smaller gallery's 9 %
    assert (point.max_reid_attack, point.max_reid_top1) == ("wiener", pytest.approx(0.10))
    assert point.reid_over_chance_points == pytest.approx(5.0)
    assert point.attacks_counted == 4 and not math.isnan(point.reid_chance)
    paths = write_tradeoff([point], tmp_path / "out", blind=captions["blind"])
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert "| privacy | 0.610 | 90.5 | unet | 0.410 |" in paths["md"].read_text()
    assert "| wiener 10 % (5 %) |" in paths["md"].read_text()
    assert "Blind captioner" in paths["md"].read_text()
    with paths["csv"].open() as fh:
        assert float(next(csv.DictReader(fh))["reid_over_chance_points"]) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="no row in the caption table"):
        tradeoff_points(captions, {"defocus": loaded})


def test_bad_attack_specs_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="NAME=path"):
        load_attack_results("results.json")
    with pytest.raises(FileNotFoundError, match="privacy="):
        load_attack_results(f"privacy={tmp_path / 'missing.json'}")
    with pytest.raises(FileNotFoundError, match=r"comparison\.csv"):
        read_caption_rows(tmp_path / "none.csv")

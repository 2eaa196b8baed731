"""Caption evaluation tables: the paper-style markdown and the comparison CSV."""

from __future__ import annotations

import csv

import pytest

from endtoend.evaluation import PUBLISHED_COCO, markdown_table, write_csv

RESULT = {
    "camera": "privacy",
    "checkpoint": "runs/privacy/checkpoints/best.ckpt",
    "metrics": {"BLEU-1": 61.234, "CIDEr-D": 80.0, "ssim": 0.4, "ssim_std": 0.1, "psnr": 12.0,
                "psnr_std": 1.5},
}  # fmt: skip


def test_markdown_table_rows_and_published_reference() -> None:
    lines = markdown_table([RESULT]).splitlines()
    assert lines[0].startswith("| camera | B-1 | B-2 | B-3 | B-4 | METEOR | ROUGE-L | CIDEr |")
    assert "grounding F1" not in lines[0]  # no ground truth in these metrics
    assert lines[2].startswith("| privacy | 61.2 | n/a |") and "0.400 ± 0.100" in lines[2]
    with_paper = markdown_table([RESULT], published=True).splitlines()
    assert len(with_paper) == 3 + len(PUBLISHED_COCO)
    assert any(row.startswith("| paper (COCO), ideal | 73.2") for row in with_paper)


GROUNDED = {**RESULT, "metrics": {**RESULT["metrics"], "grounding_recall": 0.5,
                                  "grounding_f1": 0.25, "shape_precision": 2 / 3,
                                  "shape_recall": 0.5, "shape_f1": 4 / 7}}  # fmt: skip


def test_grounding_columns_appear_with_ground_truth() -> None:
    head, _, row = markdown_table([GROUNDED]).splitlines()
    cells = dict(zip(head.split(" | "), row.split(" | "), strict=True))
    assert cells["grounding F1"] == "0.250"
    assert (cells["shape P"], cells["shape R"], cells["shape F1"]) == ("0.667", "0.500", "0.571")
    assert "| shape R | shape F1 | colour P |" in head  # right after shape R
    assert cells["colour P"] == "n/a"  # not counted: said, not left out


def test_comparison_csv_has_shape_f1_with_ground_truth(tmp_path) -> None:
    write_csv(tmp_path / "c.csv", [GROUNDED])
    (row,) = csv.DictReader((tmp_path / "c.csv").open())
    assert float(row["shape_f1"]) == pytest.approx(4 / 7) and float(row["grounding_f1"]) == 0.25
    header = next(csv.reader((tmp_path / "c.csv").open()))
    assert header.index("shape_f1") == header.index("shape_recall") + 1


def test_comparison_csv(tmp_path) -> None:
    write_csv(tmp_path / "c.csv", [RESULT])
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert rows[0]["camera"] == "privacy" and float(rows[0]["BLEU-1"]) == 61.234
    assert rows[0]["METEOR"] == "" and float(rows[0]["psnr_std"]) == 1.5
    assert "shape_f1" not in rows[0]  # no ground truth: no grounding columns


def test_runs_of_one_preset_get_their_run_folder_in_the_name() -> None:
    from endtoend.evaluation import _unique_camera_names

    results = [
        {"camera": "privacy", "checkpoint": "runs/published/checkpoints/best.ckpt"},
        {"camera": "privacy", "checkpoint": "runs/adv_w3/checkpoints/best.ckpt"},
        {"camera": "privacy", "checkpoint": "other/adv_w3/checkpoints/best.ckpt"},
        {"camera": "ideal", "checkpoint": "runs/ideal/checkpoints/best.ckpt"},
    ]
    _unique_camera_names(results)
    assert [r["camera"] for r in results] == [
        "privacy (published)",
        "privacy (adv_w3)",
        "privacy (adv_w3) #2",
        "ideal",
    ]


def test_compare_takes_row_names_by_checkpoint(tmp_path, monkeypatch) -> None:
    """The study names a lone lens by its loss variant, which the preset alone would not say."""
    import endtoend.evaluation as evaluation

    def fake(ckpt, *args, **kwargs):
        camera = "ideal" if "ideal" in ckpt else "privacy"
        return {**RESULT, "camera": camera, "checkpoint": ckpt}

    monkeypatch.setattr(evaluation, "evaluate_captions", fake)
    wide = "runs/adversary_wide/checkpoints/best.ckpt"
    names = {wide: "privacy (adversary_wide)"}
    results = evaluation.compare(["runs/ideal/best.ckpt", wide], tmp_path, names=names)
    assert [r["camera"] for r in results] == ["privacy (adversary_wide)", "ideal"]
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [r["camera"] for r in rows] == ["privacy (adversary_wide)", "ideal"]
    plain = evaluation.compare([wide], tmp_path / "plain")
    assert plain[0]["camera"] == "privacy"

"""Grounding metric: captions checked against the generator's ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from captioning.data import load_records
from captioning.grounding import GROUNDING_METRICS, grounding_scores, parse_caption

TWO = {  # a large red circle to the left of a small face, striped background
    "background": "stripes",
    "relation": "left",
    "objects": [
        {"kind": "circle", "colour": "red", "size": "large", "centre": [0.25, 0.5]},
        {"kind": "face", "colour": None, "size": "small", "centre": [0.75, 0.5]},
    ],
}
ONE = {
    "background": "dots",
    "relation": None,
    "objects": [{"kind": "star", "colour": "blue", "size": "small", "centre": [0.5, 0.5]}],
}


def test_exact_caption_scores_one() -> None:
    caps = {
        1: "a large red circle to the left of a small face on a striped background",
        2: "a small blue star on a dotted background",
    }
    s = grounding_scores({1: TWO, 2: ONE}, caps)
    for key in ("shape", "colour", "background", "grounding"):
        assert s[f"{key}_precision"] == 1.0 and s[f"{key}_recall"] == 1.0, key
    assert s["grounding_f1"] == 1.0 and s["object_precision"] == 1.0
    assert s["relation_accuracy"] == 1.0 and s["shape_f1"] == 1.0
    assert set(s) == set(GROUNDING_METRICS)  # what the tables and the CSV show


def test_wrong_words_count_against() -> None:
    s = grounding_scores({1: TWO}, {1: "a green square above a face on a checkered background"})
    assert s["shape_precision"] == 0.5 and s["shape_recall"] == 0.5  # face right, square wrong
    assert s["colour_precision"] == 0.0 and s["colour_recall"] == 0.0
    assert s["background_precision"] == 0.0
    assert s["object_precision"] == 0.5
    # square matches no object, so the relation cannot be checked
    assert s["relation_accuracy"] is None
    # pooled: 1 right of 4 named (2 shapes, 1 colour, 1 background); 1 of 4 true found
    assert s["grounding_precision"] == pytest.approx(1 / 4)
    assert s["grounding_recall"] == pytest.approx(1 / 4)


def test_shape_f1_is_the_micro_harmonic_mean_of_shape_p_and_r() -> None:
    """2 of 3 named shapes are there, 2 of 4 present are named: P 2/3, R 1/2, F1 4/7 (the
    mean of the per-image F1s, 1/2, 1 and 0, would be 1/2)."""
    diamond = {**ONE, "objects": [{"kind": "diamond", "colour": "red", "size": "large"}]}
    caps = {1: "a circle and a square", 2: "a star", 3: "an image on a dotted background"}
    s = grounding_scores({1: TWO, 2: ONE, 3: diamond}, caps)
    assert s["shape_precision"] == pytest.approx(2 / 3) and s["shape_recall"] == 0.5
    assert s["shape_f1"] == pytest.approx(4 / 7)
    # nothing to find: undefined; something to find and nothing named: 0
    empty = {**ONE, "objects": []}
    assert grounding_scores({1: empty}, {1: "a star"})["shape_f1"] is None
    assert grounding_scores({1: ONE}, {1: "an image"})["shape_f1"] == 0.0
    # named and present, none right: P = R = 0
    assert grounding_scores({1: ONE}, {1: "a square"})["shape_f1"] == 0.0


def test_relations_both_directions() -> None:
    right = grounding_scores({1: TWO}, {1: "a face to the right of a red circle"})
    wrong = grounding_scores({1: TWO}, {1: "a red circle below a face"})
    assert right["relation_accuracy"] == 1.0 and wrong["relation_accuracy"] == 0.0
    assert grounding_scores({1: TWO}, {1: "a circle and a face"})["relation_accuracy"] is None


def test_synonyms_and_plurals() -> None:
    parsed = parse_caption("Two big red discs under some faces on a chequered backdrop, violet")
    assert [(m.kind, m.colour, m.size) for m in parsed.objects] == [
        ("circle", "red", "large"),
        ("face", None, None),
    ]
    assert parsed.relations == [(0, "below", 1)]
    assert parsed.backgrounds == {"checks"} and parsed.colours == {"red", "purple"}


def test_template_caption_scores_the_blind_level(synthetic_root: Path) -> None:
    """A caption that ignores the image scores the prevalence of what it names."""
    records = load_records(synthetic_root, "train")
    scenes = {r.image_id: r.info()["scene"] for r in records}
    template = {i: "an image showing a large face" for i in scenes}
    s = grounding_scores(scenes, template)
    with_face = sum(any(o["kind"] == "face" for o in sc["objects"]) for sc in scenes.values())
    assert s["shape_precision"] == pytest.approx(with_face / len(scenes))
    n_kinds = sum(len({o["kind"] for o in sc["objects"]}) for sc in scenes.values())
    assert s["shape_recall"] == pytest.approx(with_face / n_kinds)
    assert s["colour_precision"] is None and s["colour_recall"] == 0.0
    exact = {
        i: " and ".join(f"a {o['colour'] or ''} {o['kind']}" for o in sc["objects"])
        for i, sc in scenes.items()
    }
    assert grounding_scores(scenes, exact)["shape_recall"] == 1.0


def test_unknown_image_is_an_error() -> None:
    with pytest.raises(KeyError, match="ground-truth scene"):
        grounding_scores({1: ONE}, {2: "a star"})


def test_ground_truth_round_trips(synthetic_root: Path) -> None:
    """The scene written into both files is what the captions describe, and readers keep it."""
    karpathy = json.loads((synthetic_root / "dataset_coco.json").read_text())
    coco_val = json.loads((synthetic_root / "annotations/captions_val2014.json").read_text())
    coco_by_file = {img["file_name"]: img for img in coco_val["images"]}
    records = {r.path.name: r for s in ("train", "val", "test")
               for r in load_records(synthetic_root, s)}  # fmt: skip
    for entry in karpathy["images"]:
        scene = entry["scene"]
        assert records[entry["filename"]].info()["scene"] == scene
        if entry["filename"] in coco_by_file:
            assert coco_by_file[entry["filename"]]["scene"] == scene
        # every reference caption is perfectly grounded in precision
        for sent in entry["sentences"]:
            g = grounding_scores({0: scene}, {0: sent["raw"]})
            assert g["shape_precision"] == 1.0 and g["object_precision"] == 1.0, sent["raw"]
            assert g["relation_accuracy"] in (None, 1.0), sent["raw"]
        for obj in scene["objects"]:
            x, y, w, h = obj["bbox"]
            assert w > 0 and h > 0 and x + w <= 32 and y + h <= 32
            cx, cy = obj["centre"]
            assert x <= cx * 32 <= x + w and y <= cy * 32 <= y + h
        faces = [o for o in scene["objects"] if o["kind"] == "face"]
        assert [f["bbox"] for f in entry["faces"]] == [o["bbox"] for o in faces]
        assert all(0 <= f["identity"] < 100 for f in entry["faces"])


def test_naming_nothing_scores_zero_f1() -> None:
    s = grounding_scores({1: ONE}, {1: "an image"})
    assert s["grounding_precision"] is None and s["grounding_recall"] == 0.0
    assert s["grounding_f1"] == 0.0  # logged, so a checkpoint can monitor it from step one

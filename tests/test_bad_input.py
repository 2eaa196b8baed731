"""Issue 14, "bad input never wins": one regression test per numbered defect, the late failures,
and a table of every entry point's bad-input cases run in-process (one line ``error: ...`` naming
the option or file, exit status 2, no traceback)."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import lightning.pytorch  # noqa: F401  (its log handler binds sys.stderr now, not a test's capture)
import numpy as np
import pytest
import torch
from PIL import Image

import captioning.data as cdata
import captioning.prepared as cprep
from captioning.data import (
    CaptionDataError,
    CaptionDataset,
    ensure_prepared,
    load_image,
    load_records,
    prepare_split,
)
from captioning.synthetic import write_dataset
from captioning.vocab import Vocabulary

# a small, well-sampled lens (as in tests/optics/conftest.py)
SMALL_LENS = dict(pupil_grid=64, pupil_pitch_um=4.0, pad_factor=8, sensor_distance_mm=12.0,
                  psf_size_px=32, sensor_pitch_um=8.0, num_zernike=15, material=1.5)  # fmt: skip


@pytest.fixture(autouse=True)
def _own_root_handlers(monkeypatch):
    """Entry points call logging.basicConfig; keep its handler (bound to this test's captured
    stderr) from outliving the test."""
    monkeypatch.setattr(logging.root, "handlers", [])


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A small embedded data set the test may modify: 8 train / 3 val / 3 test, 32 px."""
    return write_dataset(tmp_path / "data", seed=1, train=8, val=3, test=3, size=32)


def _edit_karpathy(root: Path, edit) -> None:
    path = root / "dataset_coco.json"
    doc = json.loads(path.read_text())
    edit(doc["images"])
    path.write_text(json.dumps(doc))


def _repaint(path: Path, value: int) -> None:
    """Replace an image file with a flat image (a 'repaired' file), newer mtime."""
    Image.new("RGB", (32, 32), (value, value, value)).save(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


# ------------------------------------------------------------------------------------- 1


def test_1_killed_reprepare_leaves_previous_state_or_nothing(data_root, tmp_path, monkeypatch):
    out = tmp_path / "prepared"
    records = load_records(data_root, "val")
    prepare_split(records, out, "val", 32)
    before = np.load(out / "val_images.npy").copy()
    assert before.std() > 0
    vocab = Vocabulary.build(["a"], 1, 16)
    for rec in records:  # the images are repaired; the split is prepared again and killed
        _repaint(rec.path, 200)

    # killed while decoding: the previous split is untouched and still loads
    real_load = cdata.load_image
    calls = []

    def killed_while_decoding(path, size=None):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt("SIGTERM")
        return real_load(path, size)

    monkeypatch.setattr(cprep, "load_image", killed_while_decoding)
    with pytest.raises(KeyboardInterrupt):
        prepare_split(load_records(data_root, "val"), out, "val", 32)
    monkeypatch.undo()
    ds = CaptionDataset.from_prepared(out, "val", vocab)
    np.testing.assert_array_equal(np.asarray(ds.images), before)

    # killed while the split's files are replaced (the old code rewrote the live array in
    # place: its old index then described a half-written, zero-filled array)
    real_open = np.lib.format.open_memmap

    def killed_writing_live_array(filename, mode="r+", *args, **kwargs):
        arr = real_open(filename, mode, *args, **kwargs)
        if Path(filename).name == "val_images.npy" and mode == "w+":
            arr.flush()
            raise KeyboardInterrupt("SIGTERM")
        return arr

    def killed_on_replace(src, dst):
        raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(np.lib.format, "open_memmap", killed_writing_live_array)
    monkeypatch.setattr(os, "replace", killed_on_replace)
    with pytest.raises(KeyboardInterrupt):
        prepare_split(load_records(data_root, "val"), out, "val", 32)
    monkeypatch.undo()
    try:  # the previous state, or nothing -- never images that silently changed
        ds = CaptionDataset.from_prepared(out, "val", vocab)
    except (FileNotFoundError, CaptionDataError):
        assert cdata.prepared_state(records, out, "val", 32)[0] == "stale"
    else:
        np.testing.assert_array_equal(np.asarray(ds.images), before)
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]  # no temporary files left

    # a rerun notices the repaired images and rebuilds
    ensure_prepared(load_records(data_root, "val"), out, "val", 32)
    assert (np.load(out / "val_images.npy") == 200).all()


def test_1_killed_between_moves_leaves_no_index(data_root, tmp_path, monkeypatch):
    out = tmp_path / "prepared"
    records = load_records(data_root, "test")
    prepare_split(records, out, "test", 32)
    monkeypatch.setattr(
        cprep, "_write_json_atomic", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt("SIGTERM"))
    )
    with pytest.raises(KeyboardInterrupt):
        prepare_split(records[:2], out, "test", 32)
    assert not (out / "test_index.json").exists()  # array moved, index not yet: "not prepared"
    monkeypatch.undo()
    assert cdata.prepared_state(records, out, "test", 32)[0] == "stale"
    ensure_prepared(records, out, "test", 32)
    assert np.load(out / "test_images.npy").shape == (3, 3, 32, 32)


# ------------------------------------------------------------------------------------- 2


def test_2_stale_cache_is_rebuilt_or_reindexed(data_root, tmp_path):
    from train import CaptionDataModule

    def module() -> CaptionDataModule:
        return CaptionDataModule(
            root=str(data_root),
            image_size=32,
            min_word_count=1,
            prepared_dir=str(tmp_path / "prep"),
            num_workers=0,
        )

    first = module()._dataset("val")
    image_id = first.records[0].image_id
    old = np.asarray(first.images[0]).copy()

    def edit(images):
        for entry in images:
            if entry["split"] == "val":
                entry["sentences"][0]["raw"] = "an edited caption"
                break

    _edit_karpathy(data_root, edit)
    _repaint(first.records[0].path, 7)  # a corrupt JPEG "fixed" in place
    second = module()._dataset("val")
    assert "an edited caption" in second.references[image_id]
    assert (np.asarray(second.images[0]) == 7).all() and not (old == 7).all()


def test_2_caption_only_edit_rewrites_the_index_only(data_root, tmp_path):
    out = tmp_path / "prep"
    records = load_records(data_root, "train")
    ensure_prepared(records, out, "train", 32)
    stamp = (out / "train_images.npy").stat().st_mtime_ns
    _edit_karpathy(data_root, lambda imgs: imgs[0]["sentences"][0].update(raw="new words"))
    records = load_records(data_root, "train")
    assert cdata.prepared_state(records, out, "train", 32)[0] == "captions"
    ensure_prepared(records, out, "train", 32)
    assert (out / "train_images.npy").stat().st_mtime_ns == stamp  # no image decoded again
    index = json.loads((out / "train_index.json").read_text())
    assert any("new words" in e["captions"] for e in index["images"])
    assert cdata.prepared_state(records, out, "train", 32)[0] == "current"


def test_2_the_same_root_spelled_otherwise_is_the_same_cache(data_root, tmp_path, monkeypatch):
    out = tmp_path / "prep"
    ensure_prepared(load_records(data_root, "val"), out, "val", 32)
    stamp = (out / "val_images.npy").stat().st_mtime_ns
    monkeypatch.chdir(data_root.parent)
    relative = load_records(Path(data_root.name), "val")
    assert not relative[0].path.is_absolute()
    assert cdata.prepared_state(relative, out, "val", 32)[0] == "current"
    val = lambda imgs: next(e for e in imgs if e["split"] == "val")  # noqa: E731
    _edit_karpathy(data_root, lambda imgs: val(imgs)["sentences"][0].update(raw="other words"))
    relative = load_records(Path(data_root.name), "val")
    assert cdata.prepared_state(relative, out, "val", 32)[0] == "captions"
    ensure_prepared(relative, out, "val", 32)  # the index only, by image id
    assert (out / "val_images.npy").stat().st_mtime_ns == stamp
    index = json.loads((out / "val_index.json").read_text())
    assert any("other words" in e["captions"] for e in index["images"])


# ------------------------------------------------------------------------------------- 3, 4


def test_3_nan_camera_options_are_refused_by_name():
    from optics import Camera

    for option, value in [
        ("initial_defocus_um", math.nan),
        ("sensor_distance_mm", math.inf),
        ("wavelengths_nm", [460.0, math.nan]),
        ("pupil_grid", "abc"),
    ]:
        with pytest.raises(ValueError, match=option):
            Camera("privacy", **{**SMALL_LENS, option: value})


def test_3_non_finite_loss_stops_training_naming_step_and_term(
    tiny_cli_args, tiny_data_root, tmp_path, monkeypatch, capsys
):
    import endtoend.privacy_captioner as model_module
    import train

    def nan_distortion(captured, images):
        return (captured * 0).mean() * math.nan

    monkeypatch.setattr(model_module, "distortion_loss", nan_distortion)
    run = tmp_path / "run"
    argv = [
        "fit",
        *tiny_cli_args(
            tiny_data_root, run, "--trainer.max_steps", "1", "--trainer.num_sanity_val_steps", "0"
        ),
    ]
    assert train.main(argv) == 1
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and "global step 0" in line[0] and "train/distortion=nan" in line[0]
    assert "Traceback" not in err
    assert not list(run.rglob("*.ckpt"))  # no checkpoint full of NaN


def test_4_export_refuses_a_non_finite_lens(tmp_path, capsys):
    from optics import Camera, save_camera
    from optics.export import main

    camera = Camera("privacy", **SMALL_LENS)
    with torch.no_grad():
        for p in camera.lens.parameters():
            p.fill_(math.nan)
    save_camera(camera, tmp_path / "nan.pt")
    out = tmp_path / "export"
    assert main(["--ckpt", str(tmp_path / "nan.pt"), "--out", str(out), "--quick"]) == 2
    assert "not finite" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------------------------- 5


def test_5_overwrite_replaces_only_an_export(tmp_path, capsys):
    from optics import Camera, save_camera
    from optics.export import main

    save_camera(Camera("privacy", **SMALL_LENS), tmp_path / "cam.pt")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("months of work")
    args = ["--ckpt", str(tmp_path / "cam.pt"), "--out", str(out), "--levels", "4",
            "--monte-carlo", "0", "--quick", "--overwrite"]  # fmt: skip
    assert main(args) == 2
    assert "not written by optics.export" in capsys.readouterr().err
    assert (out / "thesis.tex").read_text() == "months of work"


# ------------------------------------------------------------------------------------- 6


def test_6_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    from attacks.data import load_image_set

    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    path = tmp_path / "deep" / "ramp16.png"
    path.parent.mkdir()
    Image.fromarray(ramp).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    img = load_image(path)
    expected = np.round(ramp / 257.0)
    assert np.abs(img[..., 0].astype(float) - expected).max() <= 1
    assert (img == 255).mean() < 0.01  # (clipped: 97 % were 255)
    attack_set = load_image_set(path.parent, image_size=32)
    assert np.abs(attack_set.images[0, ..., 1].astype(float) - expected).max() <= 1


# ------------------------------------------------------------------------------------- 7


@pytest.mark.parametrize("count", ["0", "-5"])
def test_7_counts_below_one_are_errors(count, tmp_path, capsys):
    from attacks.data import load_image_set
    from evaluate import main

    out = tmp_path / "attack"
    argv = ["attack", "--camera", "ideal", "--max-images", count, "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--max-images" in err and count in err and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(ValueError, match="--max-images must be >= 1"):
        load_image_set("embedded", 32, max_images=int(count))


# ------------------------------------------------------------------------------------- 8


@pytest.mark.parametrize(
    "field, value",
    [("wavelengths_nm", [450.0, 550.0, 650.0]), ("sensor_distance_mm", 30.0),
     ("material", {"name": "pmma"}), ("base_lens", {"focal_length_mm": 50.0})],
)  # fmt: skip
def test_8_lens_json_copies_that_disagree_are_refused(field, value, tmp_path):
    from optics import Camera
    from optics.export import camera_from_lens_dict, lens_to_dict

    doc = json.loads(json.dumps(lens_to_dict(Camera("privacy", **SMALL_LENS))))
    camera_from_lens_dict(doc)  # unedited: loads
    if isinstance(value, dict):
        doc[field].update(value)
    else:
        doc[field] = value
    with pytest.raises(ValueError, match=f"top-level {field}"):
        camera_from_lens_dict(doc, "lens.json")


# ------------------------------------------------------------------------------------- 9


def test_9_unknown_karpathy_split_names_are_reported(data_root, caplog):
    def typo(images):
        next(e for e in images if e["split"] in ("train", "restval"))["split"] = "tarin"
        for entry in images:
            if entry["split"] == "test":
                entry["split"] = "tset"

    _edit_karpathy(data_root, typo)
    with caplog.at_level(logging.WARNING, logger="captioning.data"):
        train = load_records(data_root, "train")
    assert len(train) == 7
    assert "'tarin': 1" in caplog.text and "'tset': 3" in caplog.text
    with pytest.raises(CaptionDataError, match=r"split names found: .*'tset': 3"):
        load_records(data_root, "test")


# ------------------------------------------------------------------------------------- late


def _fake_training_ckpt(path: Path) -> Path:
    torch.save({"hyper_parameters": {"camera": {"preset": "ideal"}}, "state_dict": {}}, path)
    return path


def test_late_captions_out_checked_before_the_evaluation(tmp_path, capsys, monkeypatch):
    import evaluate

    monkeypatch.setattr(evaluate, "evaluate_captions", lambda *a, **k: pytest.fail("ran"))
    ckpt = _fake_training_ckpt(tmp_path / "best.ckpt")
    (tmp_path / "afile").write_text("")
    argv = ["captions", "--ckpt", str(ckpt), "--out", str(tmp_path / "afile" / "sub")]
    assert evaluate.main(argv) == 2
    assert "--out" in capsys.readouterr().err


def test_late_compare_names_the_corrupt_checkpoint_before_evaluating(tmp_path, capsys, monkeypatch):
    import evaluate

    monkeypatch.setattr(evaluate, "evaluate_captions", lambda *a, **k: pytest.fail("ran"))
    good = _fake_training_ckpt(tmp_path / "good.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(good.read_bytes()[:100])
    out = tmp_path / "cmp"
    assert evaluate.main(["compare", str(good), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "truncated" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("attacks", "expected"),
    [
        (["results.json"], "NAME=path"),
        (["privacy={missing}"], "file not found"),
        (["defocus={good}"], "no row in the caption table"),
        (["privacy={notjson}"], "not JSON"),
    ],
    ids=["no-name", "missing", "unknown-camera", "not-json"],
)
def test_tradeoff_names_the_bad_attack_results(tmp_path, capsys, attacks, expected):
    import evaluate

    table = tmp_path / "comparison.csv"
    table.write_text("camera,CIDEr-D,grounding_f1\nprivacy,150,0.45\n")
    good = tmp_path / "good.json"
    good.write_text('{"rows": [{"name": "captured", "ssim": {"mean": 0.4}}]}')
    notjson = tmp_path / "bad.json"
    notjson.write_text("{")
    specs = [a.format(missing=tmp_path / "none.json", good=good, notjson=notjson) for a in attacks]
    out = tmp_path / "out"
    argv = ["tradeoff", "--captions", str(table), "--attacks", *specs, "--out", str(out)]
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1
    assert not (out / "tradeoff.png").exists()


def test_late_decompression_bomb_is_skipped_by_prepare(data_root, tmp_path, monkeypatch):
    records = load_records(data_root, "val")
    Image.new("RGB", (64, 64), "white").save(records[1].path)  # 4096 px: the "bomb"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1100)  # errors above 2200 px
    index = json.loads(prepare_split(records, tmp_path / "p", "val", 32).read_text())
    assert index["skipped"] == [records[1].path.name] and len(index["images"]) == 2
    assert not [p for p in (tmp_path / "p").iterdir() if ".tmp" in p.name]


def test_late_corrupt_image_in_attack_folder_is_skipped(tmp_path, caplog):
    from attacks.data import load_image_set

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 50, 0, 0)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    with caplog.at_level(logging.WARNING, logger="attacks.data"):
        images = load_image_set(folder, image_size=32)
    assert len(images) == 3 and "broken.png" in caplog.text and "skipped 1" in caplog.text


# ------------------------------------------------------------------------------------- table


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Broken and wrong-kind inputs shared by the table."""
    from optics import Camera
    from optics.export import lens_to_dict

    d = tmp_path_factory.mktemp("bad")
    f = {"dir": d}
    f["empty"] = d / "empty.ckpt"
    f["empty"].write_bytes(b"")
    f["training"] = _fake_training_ckpt(d / "best.ckpt")
    f["truncated"] = d / "truncated.ckpt"
    f["truncated"].write_bytes(f["training"].read_bytes()[:120])
    f["attacker"] = d / "generator.pt"
    torch.save({"kind": "unet", "hparams": {}, "state_dict": {}}, f["attacker"])
    f["captioner"] = d / "captioner.pt"  # captioning.model.save_checkpoint's format
    torch.save({"model_config": {}, "state_dict": {}, "vocab": {"itos": []}}, f["captioner"])
    f["image"] = d / "photo.png"
    Image.new("RGB", (16, 16)).save(f["image"])
    f["bad_yaml"] = d / "bad.yaml"
    f["bad_yaml"].write_text("epochs: 3\nmodel:\n  w_dec: [1,\n")
    f["afile"] = d / "afile"
    f["afile"].write_text("")
    f["train_yaml"] = d / "train.yaml"  # a LightningCLI config
    f["train_yaml"].write_text("trainer:\n  max_epochs: 1\nmodel:\n  w_dec: 0.4\n")
    f["flat_lens_yaml"] = d / "flat_lens.yaml"  # the lens options before they moved under lens
    f["flat_lens_yaml"].write_text("model:\n  camera:\n    preset: privacy\n    pupil_grid: 64\n")
    doc = lens_to_dict(Camera("privacy", **SMALL_LENS))
    doc["wavelengths_nm"] = [1.0, 2.0, 3.0]
    f["edited_lens"] = d / "lens.json"
    f["edited_lens"].write_text(json.dumps(doc))
    f["not_export"] = d / "user_folder"
    f["not_export"].mkdir()
    (f["not_export"] / "notes.txt").write_text("keep")
    f["bad_json_root"] = d / "bad_json_root"
    f["bad_json_root"].mkdir()
    (f["bad_json_root"] / "dataset_coco.json").write_text('{"images": [')
    return f


# (entry point, argv with {placeholders}, what the one error line must name)
CASES = [
    ("evaluate", "caption --ckpt {dir}/missing.ckpt --image {image}", "missing.ckpt"),
    ("evaluate", "caption --ckpt {empty} --image {image}", "is empty"),
    ("evaluate", "caption --ckpt {truncated} --image {image}", "truncated"),
    ("evaluate", "caption --ckpt {attacker} --image {image}", "attacker checkpoint"),
    ("evaluate", "caption --ckpt {captioner} --image {image}", "captioner-only checkpoint"),
    ("evaluate", "caption --ckpt {dir} --image {image}", "is a directory"),
    ("evaluate", "caption --ckpt {training} --image {dir}", "--image"),
    ("evaluate", "caption --ckpt {training} --image {image} --image-size -3", "--image-size"),
    ("evaluate", "caption --ckpt {training} --image {image} --beam-size 0", "--beam-size"),
    ("evaluate", "captions --ckpt {attacker}", "attacker checkpoint"),
    ("evaluate", "captions --ckpt {training} --out {afile}", "--out"),
    ("evaluate", "captions --ckpt {training} --max-images 0", "--max-images"),
    ("evaluate", "captions --ckpt {training} --data-root {dir}/nowhere", "--data-root"),
    ("evaluate", "compare {training} {truncated} --out {dir}/cmp", "truncated.ckpt"),
    ("evaluate", "compare {training} {empty} --out {dir}/cmp", "empty.ckpt"),
    ("evaluate", "attack --camera ideal --max-images 0", "--max-images"),
    ("evaluate", "attack --camera ideal --max-images -5", "--max-images"),
    ("evaluate", "attack --camera ideal --image-size -1", "--image-size"),
    ("evaluate", "attack --camera ideal --epochs 0", "--epochs"),
    ("evaluate", "attack --camera ideal --train-fraction 1.5 --out {dir}/a", "--train-fraction"),
    ("evaluate", "attack --camera privacy --camera-option pupil_grid=abc", "pupil_grid"),
    ("evaluate", "attack --camera privacy --camera-option pupil_grid", "--camera-option"),
    ("evaluate", "attack --camera ideal --config {bad_yaml}", "bad.yaml: not valid YAML at line"),
    ("evaluate", "attack --camera ideal --config {dir}", "is a directory"),
    ("evaluate", "attack --ckpt {attacker}", "attacker checkpoint"),
    ("evaluate", "attack --ckpt {truncated}", "truncated.ckpt"),
    ("evaluate", "attack --camera ideal --images {dir}/nowhere", "does not exist"),
    ("evaluate", "atack", "invalid choice"),
    ("evaluate", "study --init-from {dir}/missing.ckpt --out {dir}/s", "--init-from"),
    ("evaluate", "study --init-from {attacker} --out {dir}/s", "attacker checkpoint"),
    ("evaluate", "study --config {dir}/none.yaml --out {dir}/s", "--config"),
    ("evaluate", "study --train-config {dir}/none.yaml --out {dir}/s", "--train-config"),
    # the old meaning of demo / study --config: one line naming the new option
    ("evaluate", "study --config {train_yaml} --out {dir}/s", "pass it as --train-config"),
    ("evaluate", "demo --config {train_yaml} --out {dir}/d", "pass it as --train-config"),
    ("evaluate", "study --attack wienr --out {dir}/s", "wienr"),
    ("evaluate", "study --strength-curve 1,all --out {dir}/s", "strength curve point"),
    ("evaluate", "study --strength-attacker wiener --out {dir}/s", "--strength-attacker"),
    ("evaluate", "study --out {afile}", "--out"),
    ("evaluate", "caption --ckpt {training} --image {image} --device cuda:99", "--device"),
    ("evaluate", "attack --camera ideal --device banana", "--device"),
    ("export", "--ckpt {empty} --out {dir}/e", "empty.ckpt"),
    ("export", "--ckpt {attacker} --out {dir}/e", "attacker checkpoint"),
    ("export", "--ckpt {dir} --out {dir}/e", "is a directory"),
    ("export", "--coefficients {dir} --out {dir}/e", "is a directory"),
    ("export", "--coefficients {edited_lens} --out {dir}/e", "wavelengths_nm"),
    ("export", "--coefficients {edited_lens}", "--out"),
    ("prepare", "prepare --root {dir}/nowhere", "nowhere"),
    ("prepare", "prepare --root {dir} --size -5", "--size"),
    ("prepare", "prepare --root {dir} --size abc", "--size"),
    ("prepare", "prepare --root {bad_json_root}", "dataset_coco.json"),
    ("optics-demo", "--size 0 --out {dir}/od", "--size"),
    ("optics-demo", "--defocus-um nan --out {dir}/od", "--defocus-um"),
    ("train", "fit --model.camera.preset ideal --model.lr_decoder nan", "model.lr_decoder"),
    ("export", "--coefficients {edited_lens} --out {dir}/e --tolerance-um nan", "--tolerance-um"),
    ("export", "--coefficients {edited_lens} --out {dir}/e --max-sag-um inf", "--max-sag-um"),
    ("evaluate", "attack --camera ideal --train-fraction nan", "--train-fraction"),
    ("optics-demo", "--defocus-um abc --out {dir}/od", "--defocus-um"),
    ("train", "fit --model.camera.preset ideal --trainer.max_epochs -5", "max_epochs"),
    ("train", "fit --model.camera.preset ideal --data.max_eval_images 0", "data.max_eval_images"),
    ("train", "fit --model.blind true --data.root {dir}/nowhere", "nowhere"),
    ("train", "fit --model.camera.lens.initial_defocus_um .nan", "initial_defocus_um"),
    ("train", "fit --model.camera.lens.pupil_grid abc", "pupil_grid"),
    # the lens options moved under model.camera.lens: the old form names the new one
    ("train", "fit --model.camera.pupil_grid 64", "is now --model.camera.lens.pupil_grid"),
    ("train", "fit --model.camera.num_zernike=6", "is now --model.camera.lens.num_zernike"),
    ("train", "fit --config {flat_lens_yaml}", "flat_lens.yaml: model.camera.pupil_grid is now"),
    ("synthetic", "--out {dir}/syn --train 0", "--train"),
    ("synthetic", "--out {dir}/syn --size abc", "--size"),
    ("train", "fit --model.w_dec abc", "model.w_dec"),
    ("train", "fit --data.batch_size 0", "data.batch_size"),
    ("train", "fit --data.root {dir}/nowhere", "data.root"),
    ("train", "fit --config {bad_yaml}", "bad.yaml"),
    ("train", "fit --data.root {afile}", "is a file"),
    ("train", "fit --data.image_size 7", "data.image_size"),
    ("train", "fit --data.format xml", "data.format"),
    ("train", "fit --trainer.accelerator mps", "trainer options"),
    ("train", "fit --model.camera.lens.wavelengths_nm [460,.nan]", "wavelengths_nm"),
    ("train", "fit --ckpt_path {attacker}", "attacker checkpoint"),
    ("train", "fit --ckpt_path {empty}", "empty.ckpt"),
    ("train", "fit --ckpt_path {truncated}", "truncated.ckpt"),
]


def _entry(name: str):
    if name == "evaluate":
        from evaluate import main
    elif name == "export":
        from optics.export import main
    elif name == "prepare":
        from captioning.data import main
    elif name == "optics-demo":
        from optics.demo import main
    elif name == "synthetic":
        from captioning.synthetic import main
    else:
        from train import main
    return main


@pytest.mark.parametrize("entry, template, names", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_entry_points_give_one_line_errors(
    entry, template, names, files, tiny_cli_args, tiny_data_root, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("PRIVCAM_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)  # default output folders land here
    argv = template.format(**{k: str(v) for k, v in files.items()}).split()
    if entry == "train" and "--config" not in argv:
        argv = [argv[0], *tiny_cli_args(tiny_data_root, tmp_path / "run"), *argv[1:]]
    capsys.readouterr()
    status = _entry(entry)(argv)  # a status, never SystemExit
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert status == 2, err
    assert len(errors) == 1, err
    assert names in errors[0], errors[0]
    assert "Traceback" not in err


def test_debug_shows_the_traceback(files, capsys, monkeypatch):
    from evaluate import main

    argv = ["caption", "--ckpt", str(files["empty"]), "--image", str(files["image"])]
    assert main([*argv, "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("PRIVCAM_DEBUG", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error:")


def test_one_error_helper_for_optics_and_captioning():
    """One error helper (optics.cli_errors), imported by captioning too: no copy to drift."""
    root = Path(__file__).resolve().parents[1]
    assert not (root / "captioning" / "cli_errors.py").exists()
    for path in [*(root / "captioning").glob("*.py"), root / "train.py", root / "evaluate.py"]:
        assert "captioning.cli_errors" not in path.read_text(), path


def test_camera_checkpoint_passed_as_attacker_is_named(files, tmp_path):
    from attacks.learned import load_attacker
    from optics import Camera, save_camera

    with pytest.raises(ValueError, match="training checkpoint, not an attacker"):
        load_attacker(files["training"])
    save_camera(Camera("ideal"), tmp_path / "generator.pt")
    with pytest.raises(ValueError, match=r"camera file .*not an attacker"):
        load_attacker(tmp_path / "generator.pt")
    with pytest.raises(ValueError, match="empty"):
        load_attacker(files["empty"])

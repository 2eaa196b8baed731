"""Caption evaluation of trained cameras: captions of a split and their metrics, paper-style
tables, the comparison of several cameras, and captions of single images."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from attacks.published import PUBLISHED_COCO, published_ssim_text
from endtoend.checkpoints import camera_name, load_model, load_trained

__all__ = [
    "GROUNDING_COLUMNS",
    "PUBLISHED_COCO",
    "TABLE_METRICS",
    "caption_images",
    "compare",
    "evaluate_captions",
    "markdown_table",
]

TABLE_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
# grounding (embedded data set): fractions, shown beside the n-gram metrics when present
GROUNDING_COLUMNS = {
    "shape_precision": "shape P",
    "shape_recall": "shape R",
    "shape_f1": "shape F1",
    "colour_precision": "colour P",
    "colour_recall": "colour R",
    "background_recall": "bg R",
    "relation_accuracy": "relation acc",
    "grounding_f1": "grounding F1",
}


def evaluate_captions(
    ckpt: str | Path,
    split: str = "test",
    beam: int = 3,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    data_root: str | None = None,
    batch_size: int | None = None,
    max_images: int | None = None,
    seed: int = 0,
    camera: Mapping[str, Any] | None = None,
) -> dict:
    """Caption a split through the trained camera (``camera``: options replacing it, e.g. a
    measured PSF, ``endtoend.checkpoints.load_model``); write results, metrics JSON and
    markdown."""
    import lightning as L

    from captioning.metrics import save_results

    L.seed_everything(seed, verbose=False)
    module, data = load_trained(ckpt, device, data_root, batch_size, max_images, camera)
    module.hparams.test_beam_size = beam
    module.eval_split = split
    trainer = L.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data.test_split = split
    trainer.test(module, datamodule=data, verbose=False)
    metrics = {k.split("/", 1)[1]: v for k, v in module.last_eval["metrics"].items()}
    preset = camera_name(module.hparams)
    out = Path(out_dir) if out_dir else Path(ckpt).parent.parent / f"eval_{split}"
    out.mkdir(parents=True, exist_ok=True)
    save_results(out / f"captions_{split}_results.json", module.last_eval["captions"])
    result = {
        "checkpoint": str(ckpt),
        "camera": preset,
        "split": split,
        "beam": beam,
        "metrics": metrics,
    }
    (out / f"metrics_{split}.json").write_text(json.dumps(result, indent=2))
    (out / f"metrics_{split}.md").write_text(markdown_table([result]))
    return result


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(results: Sequence[dict], published: bool = False) -> str:
    """Paper-style table: caption metrics (×100), grounding (fractions, embedded data set
    only) and SSIM/PSNR of captured vs original."""
    # every grounding column once the data set has ground truth (n/a: nothing to count)
    has_truth = any("grounding_recall" in r["metrics"] for r in results)
    grounding = list(GROUNDING_COLUMNS) if has_truth else []
    head = [
        "camera",
        *("B-" + m[-1] if m.startswith("BLEU") else m.replace("-D", "") for m in TABLE_METRICS),
        *(GROUNDING_COLUMNS[k] for k in grounding),
        "SSIM captured",
        "PSNR captured (dB)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        m = r["metrics"]
        cells = [
            r["camera"],
            *(_fmt(m.get(k)) for k in TABLE_METRICS),
            *(_fmt(m.get(k), 3) for k in grounding),
            f"{m['ssim']:.3f} ± {m['ssim_std']:.3f}",
            f"{m['psnr']:.1f} ± {m['psnr_std']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if published:
        for cam, m in PUBLISHED_COCO.items():
            cells = [
                f"paper (COCO), {cam}",
                *(_fmt(m.get(k)) if k in m else "" for k in TABLE_METRICS),
                *("" for _ in grounding),
                published_ssim_text()["captured"] if cam == "privacy" else "",
                "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare(
    ckpts: Sequence[str | Path],
    out_dir: str | Path,
    split: str = "test",
    beam: int = 3,
    device: str = "cpu",
    data_root: str | None = None,
    max_images: int | None = None,
    names: Mapping[str, str] | None = None,
) -> list[dict]:
    """Evaluate several cameras and write the comparison table (markdown + CSV). ``names``:
    checkpoint (as given in ``ckpts``) → row name, e.g. the study's "privacy (adversary_wide)"
    even when it is the only lens (default: the camera preset, made unique by run folder)."""
    order = {name: i for i, name in enumerate([*PUBLISHED_COCO, "blind"])}
    results = [
        evaluate_captions(
            c,
            split,
            beam,
            Path(out_dir) / f"eval_{i}_{split}",
            device,
            data_root,
            max_images=max_images,
        )
        for i, c in enumerate(ckpts)
    ]
    results.sort(key=lambda r: order.get(r["camera"], 99))
    for r in results:
        r["camera"] = (names or {}).get(r["checkpoint"], r["camera"])
    _unique_camera_names(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(markdown_table(results, published=True))
    write_csv(out / "comparison.csv", results)
    return results


def write_csv(path: Path, results: Sequence[dict]) -> None:
    """The comparison as CSV: camera, checkpoint, caption metrics, grounding (when the data
    set has ground truth), SSIM and PSNR of the captures."""
    from captioning.grounding import GROUNDING_METRICS

    has_truth = any("grounding_recall" in r["metrics"] for r in results)
    grounding = list(GROUNDING_METRICS) if has_truth else []
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["camera", "checkpoint", *TABLE_METRICS, *grounding,
                         "ssim", "ssim_std", "psnr", "psnr_std"])  # fmt: skip
        for r in results:
            m = r["metrics"]
            writer.writerow([r["camera"], r["checkpoint"], *(m.get(k) for k in TABLE_METRICS),
                             *(m.get(k) for k in grounding),
                             m["ssim"], m["ssim_std"], m["psnr"], m["psnr_std"]])  # fmt: skip


def caption_images(
    ckpt: str | Path,
    paths: Sequence[str | Path],
    device: str = "cpu",
    beam_size: int = 3,
    max_len: int = 20,
    image_size: int | None = None,
    camera: Mapping[str, Any] | None = None,
) -> list[tuple[str, float]]:
    """Caption image files through a trained model: what its camera records, then its
    captioner (a blind model sees grey). ``image_size``: the scene size (default: the one it
    was trained at); ``camera``: options replacing its camera (as for ``evaluate_captions``).
    Returns (caption, log-probability) per image."""
    from captioning.images import load_image

    module, raw = load_model(ckpt, device, camera)
    size = image_size or int(raw.get("datamodule_hyper_parameters", {}).get("image_size", 256))
    images = (
        torch.stack([torch.from_numpy(load_image(p, size)).permute(2, 0, 1) for p in paths])
        .float()
        .div(255.0)
        .to(device)
    )
    with torch.no_grad():
        captured = module.camera.eval()(images)
        result = module.captioner.generate(
            module.cnn_input(captured), beam_size=beam_size, max_len=max_len
        )
    assert result.captions is not None
    return list(zip(result.captions, result.log_probs.tolist(), strict=True))


def _unique_camera_names(results: Sequence[dict]) -> None:
    """Several runs of one preset (e.g. lenses trained with different losses) get their run
    folder in the name, "privacy (adv_w3)", so tables and ``evaluate.py tradeoff`` can tell
    them apart."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r["camera"]] = counts.get(r["camera"], 0) + 1
    for r in results:
        if counts[r["camera"]] > 1:
            path = Path(r["checkpoint"])
            run = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
            r["camera"] = f"{r['camera']} ({run})"
    seen: dict[str, int] = {}
    for r in results:  # same preset and run folder name under different parents
        seen[r["camera"]] = seen.get(r["camera"], 0) + 1
        if seen[r["camera"]] > 1:
            r["camera"] = f"{r['camera']} #{seen[r['camera']]}"

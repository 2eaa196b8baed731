"""privcam evaluation entry point.

Subcommands:
    caption   caption one image with a trained captioner checkpoint
    attack    deconvolution / learned attacks on a camera (attacks.cli)

Example::

    python evaluate.py caption --ckpt runs/captioner/captioner.pt --image photo.jpg

Each subcommand registers itself in ``SUBCOMMANDS`` (name -> (add_arguments, run)); add new
ones (attacks, tables, ...) the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from optics.cli_errors import ArgumentParser, check_output_dir, positive_int, run_cli


def _caption_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ckpt",
        required=True,
        help="end-to-end training checkpoint (…/best.ckpt: the image goes through its camera) "
        "or captioner-only checkpoint (captioner.pt)",
    )
    parser.add_argument("--image", required=True, nargs="+", help="image file(s) (JPEG/PNG)")
    parser.add_argument("--beam-size", type=positive_int, default=3)
    parser.add_argument("--max-len", type=positive_int, default=20)
    parser.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="resize to this square size (default: the size used in training)",
    )
    parser.add_argument("--device", default="cpu")


def _check_device(device: str) -> None:
    """``--device`` names a device this machine has (before any model is built)."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(
            f"--device {device!r} is not a device ({err}); use cpu or cuda[:N]"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )


def _caption(args: argparse.Namespace) -> int:
    import torch

    from captioning.data import load_image
    from captioning.model import load_checkpoint
    from optics.camera import checkpoint_kind, describe_checkpoint_kind, read_checkpoint

    _check_device(args.device)
    for image in args.image:  # every input before the model is built
        if Path(image).is_dir():
            raise IsADirectoryError(f"--image {image} is a directory; pass image files")
        if not Path(image).is_file():
            raise FileNotFoundError(f"--image {image} does not exist")
    ckpt_path = Path(args.ckpt)
    ckpt = read_checkpoint(ckpt_path)
    kind = checkpoint_kind(ckpt)
    if kind not in ("training", "captioner"):
        raise ValueError(
            f"--ckpt {ckpt_path} is {describe_checkpoint_kind(kind)}; `caption` needs an "
            "end-to-end training checkpoint (…/best.ckpt) or a captioner checkpoint (captioner.pt)"
        )
    camera = None
    if kind == "training":  # end-to-end training checkpoint
        module, _ = load_trained(ckpt_path, args.device)
        model, camera = module.captioner, module.camera.eval()
        size = args.image_size or int(
            ckpt.get("datamodule_hyper_parameters", {}).get("image_size", 256)
        )
        blind = False
    else:
        model, _ = load_checkpoint(args.ckpt, map_location=args.device)
        size = args.image_size or int(ckpt.get("image_size", 224))
        blind = bool(ckpt.get("blind", False))
    images = (
        torch.stack(
            [torch.from_numpy(load_image(path, size)).permute(2, 0, 1) for path in args.image]
        )
        .float()
        .div(255.0)
        .to(args.device)
    )
    if blind:
        images = torch.full_like(images, 0.5)
    if camera is not None:  # what the privacy camera would record, then its captioner
        with torch.no_grad():
            images = module.cnn_input(camera(images))
    result = model.generate(images, beam_size=args.beam_size, max_len=args.max_len)
    assert result.captions is not None
    for path, caption, logp in zip(
        args.image, result.captions, result.log_probs.tolist(), strict=True
    ):
        if len(args.image) == 1:
            print(caption)
        else:
            print(f"{path}\t{caption}\t(log p {logp:.2f})")
    return 0


def _attack_args(parser: argparse.ArgumentParser) -> None:
    from attacks.cli import add_arguments

    add_arguments(parser)


def _attack(args: argparse.Namespace) -> int:
    from attacks.cli import run

    _check_device(args.device)
    return run(args)


SUBCOMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]
] = {
    "caption": (_caption_args, _caption, "caption image(s) with a trained captioner"),
    "attack": (_attack_args, _attack, "attack a camera: Wiener, scikit-image, DeblurGAN, U-Net"),
}


# ============================================================================ end-to-end models

# cameras of `evaluate.py demo`; lens presets train this many epochs from the ideal captioner
DEMO_CAMERAS = ("ideal", "blind", "privacy", "defocus", "lowres")
DEMO_LENS_EPOCHS = 2
DEMO_BLIND_EPOCHS = 2  # the language prior is learnt in two epochs (then it only overfits)
PUBLISHED_COCO = {  # Arguello et al., COCO Karpathy test split (DESIGN.md "Targets")
    "privacy": {"BLEU-1": 68.9, "BLEU-4": 29.0, "METEOR": 26.8, "CIDEr-D": 89.0},
    "defocus": {"BLEU-1": 67.3, "BLEU-4": 25.5, "METEOR": 26.8, "CIDEr-D": 81.1},
    "lowres": {"BLEU-1": 61.6, "BLEU-4": 19.9, "METEOR": 23.3, "CIDEr-D": 58.8},
    "ideal": {"BLEU-1": 73.2, "BLEU-4": 33.3, "METEOR": 29.0, "CIDEr-D": 101.2},
}
TABLE_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
# grounding (embedded data set): fractions, shown beside the n-gram metrics when present
GROUNDING_COLUMNS = {
    "shape_precision": "shape P",
    "shape_recall": "shape R",
    "colour_precision": "colour P",
    "colour_recall": "colour R",
    "background_recall": "bg R",
    "relation_accuracy": "relation acc",
    "grounding_f1": "grounding F1",
}


def camera_name(hparams: dict) -> str:
    """Table name of a trained model: its camera preset, or "blind" (captioner without image)."""
    return "blind" if hparams.get("blind", False) else str(hparams["camera"]["preset"])


def load_trained(
    ckpt: str | Path,
    device: str = "cpu",
    data_root: str | None = None,
    batch_size: int | None = None,
    max_images: int | None = None,
):
    """A trained end-to-end model and its data module, rebuilt from a training checkpoint."""
    from train import CaptionDataModule, PrivacyCaptioner

    path = Path(ckpt)
    raw = _training_checkpoint(path)
    try:
        module = PrivacyCaptioner.load_from_checkpoint(path, map_location=device)
    except (KeyError, RuntimeError, TypeError) as err:  # foreign, damaged or other-version file
        raise ValueError(
            f"{path}: cannot rebuild the trained model from this checkpoint "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); it is "
            "damaged or was written by an incompatible privcam version"
        ) from err
    data_hp = {
        k: v for k, v in raw.get("datamodule_hyper_parameters", {}).items() if not k.startswith("_")
    }
    data_hp.update(generate_embedded=False, num_workers=0, persistent_workers=False)
    if data_root:
        data_hp["root"] = data_root
    if batch_size:
        data_hp["eval_batch_size"] = batch_size
    data_hp["max_eval_images"] = max_images
    data = CaptionDataModule(**data_hp)
    return module, data


def _training_checkpoint(path: Path) -> dict:
    """Read an end-to-end training checkpoint; other kinds and broken files are refused by
    name before any work starts."""
    from optics.camera import checkpoint_kind, describe_checkpoint_kind, read_checkpoint

    raw = read_checkpoint(path)
    kind = checkpoint_kind(raw)
    if kind != "training" or "state_dict" not in raw:
        hint = (
            "; captioner-only checkpoints work with `evaluate.py caption`"
            if kind == "captioner"
            else ""
        )
        raise ValueError(
            f"{path} is {describe_checkpoint_kind(kind)}, not a privcam training checkpoint "
            f"(expected runs/…/checkpoints/best.ckpt){hint}"
        )
    return raw


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
) -> dict:
    """Caption a split through the trained camera; write results, metrics JSON and markdown."""
    import lightning as L

    from captioning.metrics import save_results

    L.seed_everything(seed, verbose=False)
    module, data = load_trained(ckpt, device, data_root, batch_size, max_images)
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
                "0.48 ± 0.12" if cam == "privacy" else "",
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
) -> list[dict]:
    """Evaluate several cameras and write the comparison table (markdown + CSV)."""
    import csv

    from captioning.grounding import GROUNDING_METRICS

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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(markdown_table(results, published=True))
    with (out / "comparison.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        has_truth = any("grounding_recall" in r["metrics"] for r in results)
        grounding = list(GROUNDING_METRICS) if has_truth else []
        writer.writerow(
            [
                "camera",
                "checkpoint",
                *TABLE_METRICS,
                *grounding,
                "ssim",
                "ssim_std",
                "psnr",
                "psnr_std",
            ]
        )
        for r in results:
            m = r["metrics"]
            writer.writerow(
                [
                    r["camera"],
                    r["checkpoint"],
                    *(m.get(k) for k in TABLE_METRICS),
                    *(m.get(k) for k in grounding),
                    m["ssim"],
                    m["ssim_std"],
                    m["psnr"],
                    m["psnr_std"],
                ]
            )
    return results


def _captions_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ckpt", required=True, help="training checkpoint (…/checkpoints/best.ckpt)"
    )
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--beam", type=positive_int, default=3, help="beam size (1 = greedy)")
    parser.add_argument("--out", default=None, help="output folder (default <run>/eval_<split>)")
    parser.add_argument(
        "--data-root", default=None, help="override the data root in the checkpoint"
    )
    parser.add_argument("--batch-size", type=positive_int, default=None)
    parser.add_argument("--max-images", type=positive_int, default=None)
    parser.add_argument("--device", default="cpu")


def _check_data_root(data_root: str | None) -> None:
    if data_root is not None and not Path(data_root).is_dir():
        raise NotADirectoryError(
            f"--data-root {data_root} is not a folder (expected the data set root with "
            "dataset_coco.json)"
        )


def _captions(args: argparse.Namespace) -> int:
    # fail before the evaluation: the checkpoint, the data root and the output folder
    _check_device(args.device)
    _training_checkpoint(Path(args.ckpt))
    _check_data_root(args.data_root)
    out = args.out or Path(args.ckpt).parent.parent / f"eval_{args.split}"
    check_output_dir(out, "--out")
    result = evaluate_captions(
        args.ckpt,
        args.split,
        args.beam,
        args.out,
        args.device,
        args.data_root,
        args.batch_size,
        args.max_images,
    )
    print(markdown_table([result]), end="")
    return 0


def _compare_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ckpts", nargs="+", help="training checkpoints, one per camera")
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--beam", type=positive_int, default=3)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--max-images", type=positive_int, default=None)
    parser.add_argument("--device", default="cpu")


def _compare(args: argparse.Namespace) -> int:
    _check_device(args.device)
    for ckpt in args.ckpts:  # every checkpoint loads before the first evaluation starts
        _training_checkpoint(Path(ckpt))
    _check_data_root(args.data_root)
    check_output_dir(args.out, "--out")
    compare(
        args.ckpts, args.out, args.split, args.beam, args.device, args.data_root, args.max_images
    )
    print((Path(args.out) / "comparison.md").read_text(), end="")
    return 0


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument(
        "--presets",
        nargs="+",
        default=list(DEMO_CAMERAS),
        choices=list(DEMO_CAMERAS),
        help="cameras to train (blind: the captioner without the image, the language prior)",
    )
    parser.add_argument(
        "--max-epochs",
        type=positive_int,
        default=None,
        help="epochs of the ideal camera's captioner (default: the config's)",
    )
    parser.add_argument(
        "--lens-epochs",
        type=positive_int,
        default=DEMO_LENS_EPOCHS,
        help="epochs of each lens preset, which starts from the ideal camera's captioner",
    )
    parser.add_argument(
        "--blind-epochs",
        type=positive_int,
        default=DEMO_BLIND_EPOCHS,
        help="epochs of the blind captioner",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="training seed (default: the config's, 0)"
    )
    parser.add_argument("--skip-attacks", action="store_true")
    parser.add_argument("--skip-export", action="store_true")


def _demo(args: argparse.Namespace) -> int:
    import logging

    # progress lines (per camera, per epoch) on stderr while the demo runs
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = run_demo(
        Path(args.out),
        args.config,
        args.presets,
        args.max_epochs,
        attacks=not args.skip_attacks,
        export=not args.skip_export,
        lens_epochs=args.lens_epochs,
        seed=args.seed,
        blind_epochs=args.blind_epochs,
    )
    print(report.read_text(), end="")
    return 0


def _demo_argv(camera: str, config: str, run_dir: Path) -> list[str]:
    """LightningCLI arguments of one demo camera ("blind": ideal preset, no image)."""
    preset = "ideal" if camera == "blind" else camera
    argv = ["fit", "--config", config, "--model.camera.preset", preset,
            "--trainer.default_root_dir", str(run_dir),
            "--trainer.enable_progress_bar", "false"]  # fmt: skip
    return [*argv, "--model.blind", "true"] if camera == "blind" else argv


def run_demo(
    out: Path,
    config: str,
    presets: Sequence[str],
    max_epochs: int | None = None,
    attacks: bool = True,
    export: bool = True,
    lens_epochs: int | None = None,
    seed: int | None = None,
    blind_epochs: int | None = None,
) -> Path:
    """Train every camera on the embedded data, evaluate them, write ``out/report.md``.

    The ideal camera's captioner trains first (``max_epochs``, default the config's); every
    lens preset then starts from it (``model.init_from``) and trains ``lens_epochs``, so each
    lens is shaped by a captioner that already reads the image. ``blind`` trains the same
    captioner on a grey image for ``blind_epochs``: the row that says what the references'
    template alone scores.
    Each camera trains in ``out/<camera>``; a previous demo run there is replaced (otherwise
    Lightning would add best-v1.ckpt beside the old best.ckpt, and the report's checkpoints
    would not be the ones the README names)."""
    import logging
    import shutil
    import time

    from train import cli_main

    progress = logging.getLogger("privcam.demo")
    out.mkdir(parents=True, exist_ok=True)
    timings, ckpts = {}, {}
    # ideal first: the lens presets start from its captioner
    cameras = sorted(presets, key=lambda c: (c != "ideal", c != "blind"))
    for i, camera in enumerate(cameras):
        t0 = time.perf_counter()
        if (out / camera).is_dir():
            print(f"replacing the previous demo run in {out / camera}", file=sys.stderr)
            shutil.rmtree(out / camera)
        argv = _demo_argv(camera, config, out / camera)
        if camera == "ideal":
            epochs = max_epochs
        elif camera == "blind":
            epochs = blind_epochs or max_epochs
        else:
            epochs = lens_epochs
            if "ideal" in ckpts:
                argv += ["--model.init_from", ckpts["ideal"]]
        if epochs is not None:
            argv += ["--trainer.max_epochs", str(epochs)]
        if seed is not None:
            argv += ["--seed_everything", str(seed)]
        spent = sum(timings.values())
        progress.info(
            "[demo] training camera %d/%d: %s (%.0f s so far)", i + 1, len(cameras), camera, spent
        )
        cli = cli_main(argv)
        data_root, image_size = cli.datamodule.root, cli.datamodule.hparams.image_size
        best = cli.trainer.checkpoint_callback.best_model_path
        ckpts[camera] = best or str(out / camera / "checkpoints" / "last.ckpt")
        timings[camera] = time.perf_counter() - t0
    progress.info("[demo] evaluating %d cameras on the test split (beam 3)", len(ckpts))
    t0 = time.perf_counter()
    results = compare(list(ckpts.values()), out, "test", beam=3)
    timings["evaluation"] = time.perf_counter() - t0
    sections = [
        "# privcam demo report",
        "",
        "Cameras trained end to end on the embedded data set (`captioning.synthetic`), "
        f"config `{config}`: the ideal camera's captioner first, then every lens preset "
        "starting from it; test split, beam 3. Caption metrics ×100; SSIM/PSNR of the "
        "captured test images against the originals (mean ± std). Published COCO figures "
        "(Arguello et al.) are shown for reference only: different data, backbone and scale.",
        "",
        "Grounding (fractions): the shapes, colours and background a caption names, checked "
        "against the generator's ground truth (precision P, recall R; relation acc = share of "
        "checkable left/right/above/below relations that are right; grounding F1 pools shapes, "
        "colours and background). The **blind** row is the same captioner trained on a grey "
        "image: what the references' shared template scores without looking. n-gram metrics "
        "(CIDEr-D above all) reward that template; read utility from the grounding columns.",
        "",
        (out / "comparison.md").read_text(),
        "Wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
        "",
    ]
    sections += _demo_figures(out, results)
    if export and "privacy" in ckpts:
        sections += _demo_export(out, ckpts["privacy"])
    if attacks:
        sections += _demo_attacks(out, ckpts, data_root, image_size)
    report = out / "report.md"
    report.write_text("\n".join(sections) + "\n")
    return report


def _demo_figures(out: Path, results: Sequence[dict]) -> list[str]:
    """PSF / height-map figures for lens cameras and an originals / captures / captions grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    lines = ["## Lenses and captures", ""]
    columns = []
    for r in results:
        module, data = load_trained(r["checkpoint"], max_images=4)
        lens = module.camera.lens
        if lens is not None:
            with torch.no_grad():
                psf = lens(height_noise=False).cpu().numpy()
                height = lens.height_map_um(include_base=False).cpu().numpy()
            fig, axes = plt.subplots(1, len(psf) + 1, figsize=(4 * (len(psf) + 1), 3.6))
            for ax, lam, p in zip(axes, lens.wavelengths_nm, psf, strict=False):
                im = ax.imshow(np.log10(p + 1e-7), cmap="inferno")
                ax.set_title(f"PSF {lam:g} nm (log10)")
                fig.colorbar(im, ax=ax, fraction=0.046)
            mask = lens.to_grid(torch.ones(lens.num_aperture)).bool().numpy()
            im = axes[-1].imshow(np.where(mask, height, np.nan), cmap="viridis")
            axes[-1].set_title("Zernike height (µm)")
            fig.colorbar(im, ax=axes[-1], fraction=0.046)
            name = f"lens_{r['camera']}.png"
            fig.savefig(out / name, dpi=80, bbox_inches="tight")
            plt.close(fig)
            lines += [f"![{r['camera']} lens]({name})", ""]
        batch = next(iter(data.test_dataloader()))
        images = batch.float_images()
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            captured, _ = module.camera.eval().capture(images, gen)
            caps = module.captioner.generate(module.cnn_input(captured), beam_size=3).captions
        columns.append((r["camera"], images, captured, caps))
    n = columns[0][1].shape[0]
    fig, axes = plt.subplots(
        n, len(columns) + 1, figsize=(2.6 * (len(columns) + 1), 2.9 * n), squeeze=False
    )
    for i in range(n):
        axes[i, 0].imshow(columns[0][1][i].permute(1, 2, 0).numpy())
        axes[i, 0].set_title("original", fontsize=8)
        for j, (cam, _, cap, text) in enumerate(columns, start=1):
            axes[i, j].imshow(cap[i].permute(1, 2, 0).clamp(0, 1).numpy())
            axes[i, j].set_title(f"{cam}:\n{text[i]}", fontsize=6)
    for ax in axes.ravel():
        ax.axis("off")
    fig.savefig(out / "captures.png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return [*lines, "![originals, captures and captions](captures.png)", ""]


def _demo_export(out: Path, ckpt: str) -> list[str]:
    try:
        from optics.export import export_lens
    except ImportError:
        return []
    from optics import load_camera

    export_dir = out / "export_privacy"
    export_lens(load_camera(ckpt), export_dir, overwrite=True, quick=True)
    return [
        "## Export (privacy lens)",
        "",
        f"Fabrication files in `{export_dir.name}/`.",
        "",
        (export_dir / "report.md").read_text(),
        "",
    ]


def _demo_attacks(out: Path, ckpts: dict[str, str], data_root: Path, image_size: int) -> list[str]:
    """Attack the two lenses and the ideal camera on the demo's test images (fast subset:
    Wiener family, Richardson–Lucy and the U-Net attacker; `evaluate.py attack --attack all`
    runs everything)."""
    from attacks import run_attacks
    from optics import load_camera

    lines = ["## Attacks", ""]
    for preset in ("privacy", "defocus", "ideal"):
        if preset not in ckpts:
            continue
        folder = out / f"attacks_{preset}"
        run_attacks(
            load_camera(ckpts[preset]),
            str(data_root),
            folder,
            "wiener,richardson_lucy,unet",
            image_size=image_size,
            max_images=150,
            epochs=2,
            backbone_weights=None,
            title=f"demo, {preset} camera",
        )
        report = (folder / "attack_report.md").read_text().replace("](", f"]({folder.name}/")
        lines += [f"### {preset} camera", "", report, ""]
    return lines


SUBCOMMANDS.update(
    {
        "captions": (
            _captions_args,
            _captions,
            "caption a split through a trained camera: metrics",
        ),
        "compare": (_compare_args, _compare, "paper-style table for several trained cameras"),
        "demo": (_demo_args, _demo, "train all cameras on the embedded data and write a report"),
    }
)


def _main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, _, help_text) in SUBCOMMANDS.items():
        add_args(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    return SUBCOMMANDS[args.command][1](args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python evaluate.py SUBCOMMAND ...``: bad input gives one line ``error: ...`` (exit 2),
    a failure during the work exit 1; ``--debug`` or ``PRIVCAM_DEBUG=1`` shows the traceback."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

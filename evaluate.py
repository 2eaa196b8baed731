"""privcam evaluation entry point.

Subcommands:
    caption   caption image(s) through a trained camera and its captioner
    captions  caption a split through a trained camera: metrics
    compare   paper-style table for several trained cameras
    demo      train all cameras on the embedded data and write a report (``make demo``)
    attack    deconvolution / learned attacks on a camera (attacks.cli)
    tradeoff  privacy–utility frontier from caption tables and attack results
    study     the privacy study: five lenses, fresh attackers, frontier (``make study``)

Example::

    python evaluate.py caption --ckpt runs/demo/ideal/checkpoints/best.ckpt --image photo.jpg

The work lives in ``endtoend`` (``checkpoints``, ``evaluation``, ``demo``) and ``attacks``;
this module is the command line. Each subcommand registers itself in ``SUBCOMMANDS``
(name -> (add_arguments, run, help)); add new ones the same way.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from endtoend.checkpoints import (
    camera_name,
    load_trained,
    measured_camera_options,
    training_checkpoint,
)
from endtoend.demo import DEMO_BLIND_EPOCHS, DEMO_CAMERAS, DEMO_LENS_EPOCHS, run_demo
from endtoend.evaluation import (
    GROUNDING_COLUMNS,
    PUBLISHED_COCO,
    TABLE_METRICS,
    caption_images,
    compare,
    evaluate_captions,
    markdown_table,
)
from optics.cli_config import ArgumentParser
from optics.cli_errors import check_output_dir, finite_float, positive_int, run_cli

__all__ = [
    "DEMO_CAMERAS",
    "GROUNDING_COLUMNS",
    "PUBLISHED_COCO",
    "SUBCOMMANDS",
    "TABLE_METRICS",
    "camera_name",
    "compare",
    "evaluate_captions",
    "load_trained",
    "main",
    "markdown_table",
    "run_demo",
]


def _psf_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--psf-file",
        default=None,
        nargs="+",
        help="a PSF measured on a bench (PNG/TIFF/npy/npz, or one file per wavelength): the "
        "checkpoint's captioner sees through it instead of its own camera (preset measured)",
    )
    parser.add_argument(
        "--psf-pitch-um",
        type=finite_float,
        default=None,
        help="pixel pitch of --psf-file in µm (default: the pitch stored in an .npz)",
    )


def _camera_swap(args: argparse.Namespace) -> dict:
    files = args.psf_file
    return measured_camera_options(
        None if files is None else (files[0] if len(files) == 1 else files), args.psf_pitch_um
    )


def _caption_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ckpt",
        required=True,
        help="training checkpoint (…/checkpoints/best.ckpt): the image goes through its camera",
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
    _psf_args(parser)


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
    _check_device(args.device)
    for image in args.image:  # every input before the model is built
        if Path(image).is_dir():
            raise IsADirectoryError(f"--image {image} is a directory; pass image files")
        if not Path(image).is_file():
            raise FileNotFoundError(f"--image {image} does not exist")
    training_checkpoint(args.ckpt)
    captions = caption_images(
        args.ckpt,
        args.image,
        args.device,
        args.beam_size,
        args.max_len,
        args.image_size,
        camera=_camera_swap(args),
    )
    for path, (caption, logp) in zip(args.image, captions, strict=True):
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
    _psf_args(parser)


def _check_data_root(data_root: str | None) -> None:
    if data_root is not None and not Path(data_root).is_dir():
        raise NotADirectoryError(
            f"--data-root {data_root} is not a folder (expected the data set root with "
            "dataset_coco.json)"
        )


def _captions(args: argparse.Namespace) -> int:
    # fail before the evaluation: the checkpoint, the data root and the output folder
    _check_device(args.device)
    training_checkpoint(args.ckpt)
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
        camera=_camera_swap(args),
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
        training_checkpoint(ckpt)
    _check_data_root(args.data_root)
    check_output_dir(args.out, "--out")
    compare(
        args.ckpts, args.out, args.split, args.beam, args.device, args.data_root, args.max_images
    )
    print((Path(args.out) / "comparison.md").read_text(), end="")
    return 0


def _progress_logging() -> None:
    """privcam's progress lines (per camera, epoch and stage) on stderr; Lightning's own INFO
    lines (accelerator found, tips), repeated for every camera and evaluation, are left out."""
    import logging

    import lightning.pytorch  # noqa: F401  (its import sets its loggers' levels; quieten after)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument(
        "--train-config", default="configs/demo.yaml", help="the LightningCLI config it trains"
    )
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
    _progress_logging()
    report = run_demo(
        Path(args.out),
        args.train_config,
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


def _tradeoff_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--captions", required=True, help="caption table (comparison.csv of `demo` or `compare`)"
    )
    parser.add_argument(
        "--attacks",
        nargs="+",
        required=True,
        metavar="CAMERA=JSON",
        help="per camera of the table: the attack_results.json of "
        "`evaluate.py attack` on it, e.g. privacy=runs/attack/privacy/"
        "attack_results.json",
    )
    parser.add_argument("--out", default="runs/tradeoff")


def _tradeoff(args: argparse.Namespace) -> int:
    from endtoend.tradeoff import tradeoff_report

    check_output_dir(args.out, "--out")
    paths = tradeoff_report(args.captions, args.attacks, args.out)
    print(paths["md"].read_text(), end="")
    return 0


SUBCOMMANDS["tradeoff"] = (
    _tradeoff_args,
    _tradeoff,
    "privacy–utility frontier: utility against the strongest attack, one point per camera",
)


def _study_args(parser: argparse.ArgumentParser) -> None:
    from endtoend.study import STUDY_LENSES, STUDY_REFERENCES, StudySettings

    d = StudySettings()
    parser.add_argument("--out", default="runs/study", help="study folder (reruns resume it)")
    parser.add_argument(
        "--train-config", default=d.config, help="base LightningCLI config of the lenses"
    )
    parser.add_argument(
        "--init-from",
        default=None,
        help="ideal camera's captioner every lens starts from (e.g. runs/demo/ideal/"
        "checkpoints/best.ckpt); default: train it, and the blind one, in --out",
    )
    parser.add_argument(
        "--blind-ckpt", default=None, help="blind captioner (default: next to --init-from)"
    )
    parser.add_argument(
        "--lenses", nargs="+", default=list(d.lenses), choices=list(STUDY_LENSES),
        help="loss variants: published loss, + Wiener term, + in-loop learned adversary, "
        "+ that adversary with a 24 px PSF support trained 2× the epochs",
    )  # fmt: skip
    parser.add_argument(
        "--references", nargs="*", default=list(d.references), choices=list(STUDY_REFERENCES),
        help="reference cameras on the frontier, trained like the lenses (none: leave out)",
    )  # fmt: skip
    parser.add_argument("--lens-epochs", type=positive_int, default=d.lens_epochs)
    parser.add_argument(
        "--max-images", type=positive_int, default=d.max_images,
        help="attack images, split 2:1 into attacker-train and test pairs",
    )  # fmt: skip
    parser.add_argument(
        "--epochs", type=positive_int, default=d.epochs, help="fresh learned attackers' epochs"
    )
    parser.add_argument("--attack", default=d.attacks, help="attacks on each lens (default all)")
    parser.add_argument("--strength-curve", default=d.strength_curve, metavar="N,N,...,all")
    parser.add_argument("--strength-attacker", default=d.strength_attacker)
    parser.add_argument("--seed", type=int, default=None, help="training seed (config's: 0)")
    parser.add_argument(
        "--saturate",
        action="store_true",
        help="attack each lens with every learned attacker trained to saturation "
        "(evaluate.py attack --saturate; --max-images, --epochs and the strength curve are "
        "then unused for them)",
    )
    parser.add_argument("--saturate-start", type=positive_int, default=d.saturate_start)
    parser.add_argument("--saturate-cap", type=positive_int, default=d.saturate_cap)
    parser.add_argument("--patience", type=positive_int, default=d.patience)
    parser.add_argument("--saturate-max-epochs", type=positive_int, default=d.saturate_max_epochs)
    parser.add_argument(
        "--device", default=d.device, help="where the attack stage trains (cpu or cuda)"
    )


def _study(args: argparse.Namespace) -> int:
    from endtoend.study import StudySettings, run_study

    _progress_logging()
    settings = StudySettings(
        config=args.train_config,
        init_from=args.init_from,
        blind_ckpt=args.blind_ckpt,
        lenses=tuple(args.lenses),
        references=tuple(args.references),
        lens_epochs=args.lens_epochs,
        max_images=args.max_images,
        epochs=args.epochs,
        attacks=args.attack,
        strength_curve=args.strength_curve,
        strength_attacker=args.strength_attacker,
        seed=args.seed,
        saturate=args.saturate,
        saturate_start=args.saturate_start,
        saturate_cap=args.saturate_cap,
        patience=args.patience,
        saturate_max_epochs=args.saturate_max_epochs,
        device=args.device,
    )
    settings.check()  # every option before the first model trains
    check_output_dir(args.out, "--out")
    print(run_study(args.out, settings).read_text(), end="")
    return 0


SUBCOMMANDS["study"] = (
    _study_args,
    _study,
    "privacy study: lenses trained with five losses against fresh attackers, and the frontier",
)


# top-level keys of a LightningCLI config: given as --config to demo / study, it is the training
# config their --config meant before it became --train-config
_TRAINING_KEYS = {"model", "data", "trainer", "seed_everything", "ckpt_path", "optimizer"}


def _refuse_training_config(argv: list[str]) -> None:
    """``demo`` / ``study`` ``--config TRAINING.yaml`` (the old meaning): one line naming
    ``--train-config``; ``--config`` is now the subcommand's options as YAML, as everywhere."""
    if not argv or argv[0] not in ("demo", "study"):
        return
    import yaml

    for flag, value in itertools.pairwise(argv):
        if flag != "--config" or not Path(value).is_file():
            continue
        try:
            keys = set(yaml.safe_load(Path(value).read_text()) or {})
        except (yaml.YAMLError, TypeError, AttributeError):
            continue  # not a mapping: jsonargparse names the problem
        if keys & _TRAINING_KEYS:
            raise ValueError(
                f"evaluate.py {argv[0]} --config {value}: that is a training config "
                f"({', '.join(sorted(keys & _TRAINING_KEYS))}); pass it as --train-config "
                f"{value} (--config takes this command's own options as YAML)"
            )


def _main(argv: list[str]) -> int:
    # jsonargparse, as every privcam CLI: a subcommand takes --config YAML (keys: its long
    # option names with underscores) and validates its options. attack reads its --config
    # itself (attacks.cli.parse: the command line wins, also for repeatable options)
    _refuse_training_config(argv)
    own_config = ("attack",)
    parser = ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0], config=False)
    sub = parser.add_subcommands(dest="command", required=True)
    for name, (add_args, _, help_text) in SUBCOMMANDS.items():
        subparser = ArgumentParser(prog=f"evaluate.py {name}", description=help_text,
                                   config=name not in own_config)  # fmt: skip
        add_args(subparser)
        sub.add_subcommand(name, subparser, help=help_text)
    if argv[:1] == ["attack"] and not {"-h", "--help"} & set(argv):
        from attacks.cli import parse  # one parse, --config files first (see above)

        return _attack(parse(argv[1:]))
    cfg = parser.parse_args(argv)
    args = cfg[cfg.command]
    return SUBCOMMANDS[cfg.command][1](args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python evaluate.py SUBCOMMAND ...``: bad input gives one line ``error: ...`` (exit 2),
    a failure during the work exit 1; ``--debug`` or ``PRIVCAM_DEBUG=1`` shows the traceback."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

"""``python evaluate.py attack``: arguments and run function (imported lazily by evaluate.py).

Examples::

    python evaluate.py attack --ckpt runs/privacy/best.ckpt --images /data/coco --attack all
    python evaluate.py attack --camera privacy --camera-option init_std_um=1.0 \\
        --camera-option num_zernike=15 --images embedded --out runs/attack_privacy
    python evaluate.py attack --config configs/attack_embedded.yaml --camera ideal \\
        --out runs/attack_ideal

Options given on the command line win over ``--config`` (a YAML file whose keys are the long
option names with dashes as underscores, e.g. ``max_images: 240``), which jsonargparse reads and
type-checks (:func:`build_parser`, :func:`parse`). ``evaluate.py attack`` is the one attack
command (``python -m attacks.cli`` only names it).
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from optics.cli_errors import check_output_dir, finite_float, positive_int

from .attackers import ATTACKERS

__all__ = [
    "add_arguments",
    "attack_options",
    "build_parser",
    "build_target",
    "main",
    "parse",
    "run",
    "saturation_config",
]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, config_action: Any = None) -> None:
    """Register the attack subcommand's options on ``parser`` (argparse or jsonargparse; the
    latter reads ``--config`` with ``config_action``, jsonargparse's ActionConfigFile).
    (Long only by its option declarations, one per option.)"""
    from .registry import attack_names

    src = parser.add_mutually_exclusive_group()
    src.add_argument("--ckpt", help="training checkpoint (or save_camera file) with the camera")
    from optics.camera import PRESETS

    src.add_argument(
        "--camera",
        choices=PRESETS,
        help="camera preset instead of a checkpoint (measured: with --camera-option "
        "psf_file=F --camera-option psf_pitch_um=P)",
    )
    parser.add_argument(
        "--camera-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a CameraConfig field of --camera (repeatable), e.g. init_std_um=1.0",
    )
    if config_action is None:
        parser.add_argument("--config", help="YAML file with defaults for these options")
    else:
        parser.add_argument(
            "--config", action=config_action, help="YAML file with defaults for these options"
        )
    parser.add_argument(
        "--images",
        default="embedded",
        help="folder of images, COCO/Karpathy data root, or 'embedded'",
    )
    parser.add_argument(
        "--split", default="test", help="Karpathy split of a data root ('all' for every image)"
    )
    parser.add_argument(
        "--max-images",
        type=positive_int,
        default=None,
        help="use at most this many images (embedded: how many to generate, 300)",
    )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="square image size (default: the camera's PSF size, else 128)",
    )
    parser.add_argument("--out", default="runs/attack", help="output folder")
    choices = ", ".join([*attack_names(), "all"])
    parser.add_argument("--attack", default="all", help=f"one or more of: {choices}")
    parser.add_argument("--epochs", type=positive_int, default=3, help="learned attackers' epochs")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--train-fraction",
        type=finite_float,
        default=2 / 3,
        help="attacker-train share of the pairs (2:1 by default)",
    )
    parser.add_argument(
        "--k-metric",
        choices=("ssim", "psnr"),
        default="ssim",
        help="what the attacker's Wiener K maximises on attacker-train pairs",
    )
    parser.add_argument(
        "--max-reference-images",
        type=positive_int,
        default=24,
        help="test images for the (slow) scikit-image reference attacks",
    )
    parser.add_argument(
        "--backbone-weights",
        default="IMAGENET1K_V1",
        help="DeblurGAN MobileNetV2 weights: enum name, local file or 'none'",
    )
    parser.add_argument(
        "--vgg-weights",
        default=None,
        help="VGG19 weights (enum name or local file) for the perceptual loss; "
        "without them the content loss is L1 + SSIM",
    )
    for spec in ATTACKERS.values():  # --deblurgan-option, --unet-option, ...
        parser.add_argument(
            spec.flag,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"{spec.class_name} argument, e.g. {spec.option_example} (repeatable)",
        )
    parser.add_argument(
        "--strength-curve",
        default=None,
        metavar="N,N,...,all",
        help="attacker strength curve: retrain one learned attacker on these "
        "numbers of attacker-train pairs, e.g. 100,300,1000,all (off)",
    )
    parser.add_argument(
        "--strength-attacker",
        default=None,
        help="learned attacker of the strength curve (default: the first "
        "learned one in --attack, else unet)",
    )
    parser.add_argument(
        "--saturate",
        action="store_true",
        help="saturation mode: train every learned attacker on doubling attacker-train pairs "
        "(embedded scenes generated as needed), each to a validation plateau, until a doubling "
        "gains < --saturate-gain test SSIM; an attacker that does not stop by the cap is "
        "reported as a lower bound (docs/evaluation.md)",
    )
    parser.add_argument(
        "--saturate-start", type=positive_int, default=600, help="pairs of the first level"
    )
    parser.add_argument(
        "--saturate-cap", type=positive_int, default=19200, help="most attacker-train pairs tried"
    )
    parser.add_argument(
        "--saturate-gain",
        type=finite_float,
        default=0.01,
        help="test SSIM a doubling must gain to go on",
    )
    parser.add_argument(
        "--patience",
        type=positive_int,
        default=3,
        help="--saturate: epochs without a validation SSIM gain that end a level's training",
    )
    parser.add_argument(
        "--saturate-max-epochs",
        type=positive_int,
        default=60,
        help="--saturate: epoch cap of one level (a level that hits it has not plateaued)",
    )
    parser.add_argument(
        "--saturate-test-pairs",
        type=positive_int,
        default=300,
        help="--saturate on embedded scenes: attacker-test pairs (embedded test split)",
    )
    parser.add_argument("--no-faces", action="store_true", help="skip face detection")
    parser.add_argument(
        "--attacker-psf",
        default=None,
        metavar="FILE",
        help="PSF file the non-blind attacks use instead of the camera's (e.g. the design's "
        "psf.npz attacking the lens as made); read like the measured preset's psf_file",
    )
    parser.add_argument(
        "--attacker-psf-pitch-um",
        type=finite_float,
        default=None,
        help="pixel pitch of --attacker-psf in µm (default: the pitch stored in an .npz)",
    )


def _parse_options(items: list[str] | dict[str, Any], flag: str) -> dict[str, Any]:
    import yaml

    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{flag} {item!r} is not KEY=VALUE (e.g. {flag} init_std_um=1.0)")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(f"{flag} {item!r}: value is not valid YAML ({err})") from None
    return out


def _check_config_file(path: Path) -> None:
    """The project's one-line errors for a missing / folder / malformed ``--config``
    (jsonargparse validates the keys and values afterwards)."""
    import yaml

    if path.is_dir():
        raise IsADirectoryError(f"--config {path} is a directory; pass a YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"--config {path} does not exist")
    try:
        yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ValueError(
            f"--config {path}: not valid YAML{where} ({problem}); fix the file"
        ) from None


def build_parser(prog: str = "evaluate.py attack") -> Any:
    """The attack options as a jsonargparse parser: ``--config`` YAML files (keys = the long
    option names with underscores, e.g. ``max_images: 240``) are parsed and type-checked by
    jsonargparse; errors raise (no exit) for :func:`parse`."""
    from jsonargparse import ActionConfigFile
    from jsonargparse import ArgumentParser as JsonArgumentParser

    parser = JsonArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0], exit_on_error=False
    )
    add_arguments(parser, config_action=ActionConfigFile)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the attack options; the ``--config`` files are read first, so options given on the
    command line win wherever they appear."""
    configs, rest, i = [], [], 0
    while i < len(argv):
        if argv[i] == "--config" and i + 1 < len(argv):
            configs += argv[i : i + 2]
            _check_config_file(Path(argv[i + 1]))
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    parser = build_parser()
    # jsonargparse would append command-line items of a repeatable option (--unet-option ...)
    # to the config's value; the command line replaces it, as for every other option.
    repeatable = {
        flag: a.dest
        for a in parser._actions
        if isinstance(a, argparse._AppendAction)
        for flag in a.option_strings
    }
    given = [i for i, arg in enumerate(rest[:-1]) if arg in repeatable]
    repeated = [arg for i in given for arg in rest[i : i + 2]]
    others = [arg for i, arg in enumerate(rest) if i not in given and i - 1 not in given]
    try:
        ns = parser.parse_args([*configs, *others])
        if repeated:
            typed = parser.parse_args(repeated)
            for dest in {repeatable[arg] for arg in repeated[::2]}:
                ns[dest] = typed[dest]
    except (argparse.ArgumentError, argparse.ArgumentTypeError) as err:
        where = f" in --config {configs[-1]}" if configs else ""
        unknown = re.search(r"Option '([^']+)' is not accepted", str(err))
        if unknown:
            valid = sorted(
                a.dest
                for a in parser._actions
                if a.option_strings and a.dest not in ("help", "config", "print_config")
            )
            raise ValueError(
                f"unknown option {unknown.group(1)!r}{where}; valid: {valid}"
            ) from None
        raise ValueError(f"{err}{where}") from None
    values = ns.as_dict()
    values.pop("__path__", None)
    values["config"] = None  # already applied
    return argparse.Namespace(**values)


def attack_options(**values: Any) -> argparse.Namespace:
    """The options of ``evaluate.py attack`` for a caller in Python (the study): the defaults
    with ``values`` (keys: the option names with underscores, e.g. ``max_images=900``) put in;
    an unknown key is refused by name. :func:`run` takes the result."""
    args = parse([])
    unknown = sorted(k for k in values if not hasattr(args, k))
    if unknown:
        valid = sorted(k for k in vars(args) if k != "config")
        raise ValueError(f"unknown attack option(s) {unknown}; valid: {valid}")
    for key, value in values.items():
        setattr(args, key, value)
    return args


def build_target(
    args: argparse.Namespace, checkpoint: Mapping[str, Any] | None = None
) -> tuple[Any, tuple[Any, dict[str, Any]] | None]:
    """The camera to attack and, for a checkpoint, its in-loop attacker (or None):
    ``--ckpt`` (``checkpoint``: that file already read) or ``Camera(--camera, **options)``."""
    from optics import Camera

    from .adversary import camera_and_in_loop_attacker

    options = _parse_options(args.camera_option, "--camera-option")
    if args.ckpt:
        if options:
            raise ValueError(
                "--camera-option applies to --camera presets only; a checkpoint "
                "carries its own camera config"
            )
        return camera_and_in_loop_attacker(args.ckpt, checkpoint)
    if not args.camera:
        raise ValueError(
            "say which camera to attack: --ckpt CHECKPOINT or --camera PRESET "
            "(privacy, defocus, lowres, ideal)"
        )
    from optics.lenses import lens_for_preset

    if lens_for_preset(args.camera) is not None and "psf_size_px" not in options:
        options["psf_size_px"] = args.image_size or 128
    try:
        return Camera(args.camera, **options), None
    except ValueError as err:
        raise ValueError(f"--camera-option: {err}") from err


def read_attacker_psf(
    camera: Any, path: str | None, pitch_um: float | None
) -> tuple[Any, str] | None:
    """``--attacker-psf``: the file read as the measured preset reads its PSF, onto the camera's
    sensor window and pitch, with its name (None without the option)."""
    if path is None:
        return None
    import torch

    from optics.measured_psf import MeasurementOptions, load_measured_psf

    lens = getattr(camera, "lens", None)
    if lens is None:
        raise ValueError(
            f"--attacker-psf {path}: the camera has no lens (ideal / lowres preset), so its "
            "captures are not blurred by a PSF; attack a camera with a lens"
        )
    channels = (1, len(lens.wavelengths_nm), 3)
    try:
        psf = load_measured_psf(
            path, lens.sensor_pitch_um, lens.psf_size_px, channels, MeasurementOptions(pitch_um)
        )
    except (OSError, ValueError) as err:
        raise type(err)(f"--attacker-psf: {err}") from err
    return torch.from_numpy(psf), str(path)


def saturation_config(args: argparse.Namespace) -> Any:
    """``--saturate`` and its options as an ``attacks.saturation.SaturationConfig`` (None
    without ``--saturate``)."""
    if not getattr(args, "saturate", False):
        return None
    from .saturation import SaturationConfig

    return SaturationConfig(
        start_pairs=args.saturate_start,
        cap_pairs=args.saturate_cap,
        min_gain=args.saturate_gain,
        patience=args.patience,
        max_epochs=args.saturate_max_epochs,
        test_pairs=args.saturate_test_pairs,
    )


def run(args: argparse.Namespace, checkpoint: Mapping[str, Any] | None = None) -> int:
    """Run the attacks and print where the report is; ``checkpoint``: ``--ckpt`` already
    read (``optics.checkpoint_file.read_checkpoint``) by a caller that needed it too."""
    import time

    from .harness import run_attacks

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import lightning.pytorch  # noqa: F401  (its import sets its own INFO level; quieten after)

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if getattr(args, "config", None):  # a namespace not made by parse(): read the file once
        raise ValueError(
            "attacks.cli.run takes parsed options (attacks.cli.parse or attack_options); "
            f"--config {args.config} is applied by parse"
        )
    if not 0 < args.train_fraction < 1:
        raise ValueError(f"--train-fraction must be in (0, 1), got {args.train_fraction}")
    start = time.perf_counter()
    saturation_config(args)  # its one-line errors before any work
    camera, in_loop = build_target(args, checkpoint)
    attacker_psf = read_attacker_psf(camera, args.attacker_psf, args.attacker_psf_pitch_um)
    check_output_dir(args.out, "--out")
    size = args.image_size
    if size is None:
        lens = getattr(camera, "lens", None)
        size = int(lens.psf_size_px) if lens is not None else 128
    images = args.images
    if images != "embedded":
        from .data import load_image_set

        split = None if args.split in (None, "all") else args.split
        images = load_image_set(images, size, args.max_images, split, args.seed)
    result = run_attacks(
        camera,
        images,
        args.out,
        args.attack,
        in_loop=in_loop,
        attacker_psf=attacker_psf,
        image_size=size,
        max_images=args.max_images,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        device=args.device,
        train_fraction=args.train_fraction,
        k_metric=args.k_metric,
        max_reference_images=args.max_reference_images,
        backbone_weights=None
        if str(args.backbone_weights).lower() == "none"
        else args.backbone_weights,
        vgg_weights=args.vgg_weights,
        attacker_options={
            name: _parse_options(getattr(args, spec.dest), spec.flag)
            for name, spec in ATTACKERS.items()
        },
        strength_curve=args.strength_curve,
        strength_attacker=args.strength_attacker,
        detect_faces=not args.no_faces,
        saturation=saturation_config(args),
        title=f"Attacks on {Path(args.ckpt).name if args.ckpt else args.camera + ' camera'}",
    )
    print(Path(result["files"]["report"]).read_text())
    print(
        f"wrote {result['files']['report']}, {result['files']['json']}, "
        f"{result['files']['figure']} in {time.perf_counter() - start:.0f} s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m attacks.cli`` is no entry point: the one attack command is
    ``python evaluate.py attack`` (same options); say so in one line."""
    import sys

    print(
        "error: python -m attacks.cli is retired: run python evaluate.py attack with the same "
        "options",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

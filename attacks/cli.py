"""``python evaluate.py attack``: arguments and run function (imported lazily by evaluate.py).

Examples::

    python evaluate.py attack --ckpt runs/privacy/best.ckpt --images /data/coco --attack all
    python evaluate.py attack --camera privacy --camera-option init_std_um=1.0 \\
        --camera-option num_zernike=15 --images embedded --out runs/attack_privacy
    python evaluate.py attack --config configs/attack_embedded.yaml --camera ideal \\
        --out runs/attack_ideal

Options given on the command line win over ``--config`` (a YAML file whose keys are the long
option names with dashes as underscores, e.g. ``max_images: 240``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from optics.cli_errors import check_output_dir, finite_float, positive_int

__all__ = ["add_arguments", "build_camera", "run"]

log = logging.getLogger(__name__)

_ATTACK_CHOICES = ("wiener, wiener_exact, unsupervised_wiener, richardson_lucy, deblurgan, unet, "
                   "wiener_unet, all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the attack subcommand's options on ``parser``."""
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--ckpt", help="training checkpoint (or save_camera file) with the camera")
    src.add_argument("--camera", choices=("privacy", "defocus", "lowres", "ideal"),
                     help="camera preset instead of a checkpoint")
    parser.add_argument("--camera-option", action="append", default=[], metavar="KEY=VALUE",
                        help="override a CameraConfig field of --camera (repeatable), e.g. "
                             "init_std_um=1.0")
    parser.add_argument("--config", help="YAML file with defaults for these options")
    parser.add_argument("--images", default="embedded",
                        help="folder of images, COCO/Karpathy data root, or 'embedded'")
    parser.add_argument("--split", default="test",
                        help="Karpathy split of a data root ('all' for every image)")
    parser.add_argument("--max-images", type=positive_int, default=None,
                        help="use at most this many images (embedded: how many to generate, 300)")
    parser.add_argument("--image-size", type=positive_int, default=None,
                        help="square image size (default: the camera's PSF size, else 128)")
    parser.add_argument("--out", default="runs/attack", help="output folder")
    parser.add_argument("--attack", default="all", help=f"one or more of: {_ATTACK_CHOICES}")
    parser.add_argument("--epochs", type=positive_int, default=3,
                        help="learned attackers' epochs")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--train-fraction", type=finite_float, default=2 / 3,
                        help="attacker-train share of the pairs (2:1 by default)")
    parser.add_argument("--k-metric", choices=("ssim", "psnr"), default="ssim",
                        help="what the attacker's Wiener K maximises on attacker-train pairs")
    parser.add_argument("--max-reference-images", type=positive_int, default=24,
                        help="test images for the (slow) scikit-image reference attacks")
    parser.add_argument("--backbone-weights", default="IMAGENET1K_V1",
                        help="DeblurGAN MobileNetV2 weights: enum name, local file or 'none'")
    parser.add_argument("--vgg-weights", default=None,
                        help="VGG19 weights (enum name or local file) for the perceptual loss; "
                             "without them the content loss is L1 + SSIM")
    parser.add_argument("--deblurgan-option", action="append", default=[], metavar="KEY=VALUE",
                        help="DeblurGANAttacker argument, e.g. ndf=32 (repeatable)")
    parser.add_argument("--unet-option", action="append", default=[], metavar="KEY=VALUE",
                        help="UNetAttacker argument, e.g. base_channels=16 (repeatable)")
    parser.add_argument("--wiener-unet-option", action="append", default=[], metavar="KEY=VALUE",
                        help="WienerUNetAttacker argument, e.g. base_channels=16 (repeatable)")
    parser.add_argument("--strength-curve", default=None, metavar="N,N,...,all",
                        help="attacker strength curve: retrain one learned attacker on these "
                             "numbers of attacker-train pairs, e.g. 100,300,1000,all (off)")
    parser.add_argument("--strength-attacker", default=None,
                        help="learned attacker of the strength curve (default: the first "
                             "learned one in --attack, else unet)")
    parser.add_argument("--no-faces", action="store_true", help="skip face detection")


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


def _apply_config(args: argparse.Namespace) -> argparse.Namespace:
    """Fill options left at their defaults from the YAML ``--config``."""
    if not args.config:
        return args
    import yaml

    path = Path(args.config)
    if path.is_dir():
        raise IsADirectoryError(f"--config {path} is a directory; pass a YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"--config {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ValueError(f"--config {path}: not valid YAML{where} ({problem}); fix the file"
                         ) from None
    if not isinstance(values, dict):
        raise ValueError(f"--config {path} must hold a mapping of option: value")
    defaults = argparse.ArgumentParser()
    add_arguments(defaults)
    default_ns = defaults.parse_args([])
    for key, value in values.items():
        key = key.replace("-", "_")
        if not hasattr(default_ns, key) or key == "config":
            raise ValueError(f"unknown option {key!r} in {path}; valid: "
                             f"{sorted(k for k in vars(default_ns) if k != 'config')}")
        if getattr(args, key) == getattr(default_ns, key):
            setattr(args, key, value)
    for key in ("max_images", "image_size", "epochs", "batch_size", "max_reference_images"):
        value = getattr(args, key)  # the config bypasses argparse's checks
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ValueError(f"{key}: {value!r} in --config {path} must be an integer >= 1")
    return args


def build_camera(args: argparse.Namespace):
    """The camera to attack: ``load_camera(--ckpt)`` or ``Camera(--camera, **options)``."""
    from optics import Camera, load_camera

    options = _parse_options(args.camera_option, "--camera-option")
    if args.ckpt:
        if options:
            raise ValueError("--camera-option applies to --camera presets only; a checkpoint "
                             "carries its own camera config")
        return load_camera(args.ckpt)
    if not args.camera:
        raise ValueError("say which camera to attack: --ckpt CHECKPOINT or --camera PRESET "
                         "(privacy, defocus, lowres, ideal)")
    if args.camera in ("privacy", "defocus") and "psf_size_px" not in options:
        options["psf_size_px"] = args.image_size or 128
    try:
        return Camera(args.camera, **options)
    except ValueError as err:
        raise ValueError(f"--camera-option: {err}") from err


def run(args: argparse.Namespace) -> int:
    """Run the attacks and print where the report is."""
    import time

    from .harness import run_attacks

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import lightning.pytorch  # noqa: F401  (its import sets its own INFO level; quieten after)

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    args = _apply_config(args)
    if not 0 < args.train_fraction < 1:
        raise ValueError(f"--train-fraction must be in (0, 1), got {args.train_fraction}")
    start = time.perf_counter()
    camera = build_camera(args)
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
        camera, images, args.out, args.attack, image_size=size, max_images=args.max_images,
        seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, device=args.device,
        train_fraction=args.train_fraction, k_metric=args.k_metric,
        max_reference_images=args.max_reference_images,
        backbone_weights=None if str(args.backbone_weights).lower() == "none"
        else args.backbone_weights,
        vgg_weights=args.vgg_weights,
        deblurgan_kwargs=_parse_options(args.deblurgan_option, "--deblurgan-option"),
        unet_kwargs=_parse_options(args.unet_option, "--unet-option"),
        wiener_unet_kwargs=_parse_options(args.wiener_unet_option, "--wiener-unet-option"),
        strength_curve=args.strength_curve, strength_attacker=args.strength_attacker,
        detect_faces=not args.no_faces,
        title=f"Attacks on {Path(args.ckpt).name if args.ckpt else args.camera + ' camera'}",
    )
    print(Path(result["files"]["report"]).read_text())
    print(f"wrote {result['files']['report']}, {result['files']['json']}, "
          f"{result['files']['figure']} in {time.perf_counter() - start:.0f} s")
    return 0

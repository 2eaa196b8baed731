"""Reading privcam's one checkpoint format (Lightning's ``…/checkpoints/best.ckpt``).

A checkpoint of the end-to-end trainer holds the camera, the captioner, the vocabulary and the
data module's options; these helpers rebuild the trained model and its data, copy a trained
captioner into another run (``model.init_from``), and refuse other files (attacker weights,
camera files, empty or truncated files) by name before any work starts.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from captioning.model import Captioner
from optics.checkpoint_file import (
    checkpoint_kind,
    describe_checkpoint_kind,
    read_checkpoint,
    register_format,
)

if TYPE_CHECKING:
    from captioning.datamodule import CaptionDataModule
    from endtoend.privacy_captioner import PrivacyCaptioner

__all__ = [
    "camera_name",
    "check_ckpt_path",
    "load_captioner_weights",
    "load_model",
    "load_trained",
    "measured_camera_options",
    "training_checkpoint",
]

log = logging.getLogger("privcam.train")


def _is_training_checkpoint(ckpt: Mapping[str, Any]) -> bool:
    hparams = ckpt.get("hyper_parameters")
    return isinstance(hparams, Mapping) and "camera" in hparams


# the end-to-end LightningModule's checkpoints: asked first (they also hold a camera)
register_format(
    "training", "a privcam end-to-end training checkpoint", _is_training_checkpoint, priority=10
)


def camera_name(hparams: Mapping[str, Any]) -> str:
    """Table name of a trained model: its camera preset, or "blind" (captioner without image)."""
    return "blind" if hparams.get("blind", False) else str(hparams["camera"]["preset"])


def training_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an end-to-end training checkpoint; other kinds and broken files are refused by
    name before any work starts."""
    raw = read_checkpoint(path)
    kind = checkpoint_kind(raw)
    if kind != "training" or "state_dict" not in raw:
        raise ValueError(
            f"{path} is {describe_checkpoint_kind(kind)}, not a privcam training checkpoint "
            "(expected runs/…/checkpoints/best.ckpt)"
        )
    return raw


def measured_camera_options(psf_file: str | None, psf_pitch_um: float | None) -> dict[str, Any]:
    """``--psf-file`` / ``--psf-pitch-um`` of the evaluation commands as camera options (the
    checkpoint's camera becomes the measured preset), or {} without a file."""
    if psf_file is None:
        if psf_pitch_um is not None:
            raise ValueError("--psf-pitch-um applies to --psf-file: give the measured PSF too")
        return {}
    return {"preset": "measured", "psf_file": psf_file, "psf_pitch_um": psf_pitch_um}


def load_model(
    ckpt: str | Path, device: str = "cpu", camera: Mapping[str, Any] | None = None
) -> tuple[PrivacyCaptioner, dict[str, Any]]:
    """The trained end-to-end model of a training checkpoint, and the checkpoint's
    raw dict (its ``datamodule_hyper_parameters`` say how the data was prepared).
    ``camera``: camera options replacing the checkpoint's (the rest kept), e.g. the measured
    PSF of the lens as made under the design's captioner (:func:`measured_camera_options`)."""
    from endtoend.privacy_captioner import PrivacyCaptioner

    path = Path(ckpt)
    raw = training_checkpoint(path)
    try:
        module = PrivacyCaptioner.load_from_checkpoint(path, map_location=device)
    except (KeyError, RuntimeError, TypeError) as err:  # foreign, damaged or other-version file
        raise ValueError(
            f"{path}: cannot rebuild the trained model from this checkpoint "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); it is "
            "damaged or was written by an incompatible privcam version"
        ) from err
    if camera:
        _replace_camera(module, camera, path)
    return module, raw


def _replace_camera(module: PrivacyCaptioner, options: Mapping[str, Any], path: Path) -> None:
    """Put a camera built from the checkpoint's camera options + ``options`` in ``module``
    (same sensor, noise and response; the new camera's name in the tables)."""
    from optics import Camera, CameraConfig

    config = CameraConfig.from_dict({**module.hparams["camera"], **options})
    device = next(module.parameters()).device
    try:
        module.camera = Camera(config).to(device)
    except ValueError as err:
        raise ValueError(f"camera for {path}: {err}") from err
    module.hparams["camera"] = config.to_dict()


def load_trained(
    ckpt: str | Path,
    device: str = "cpu",
    data_root: str | None = None,
    batch_size: int | None = None,
    max_images: int | None = None,
    camera: Mapping[str, Any] | None = None,
) -> tuple[PrivacyCaptioner, CaptionDataModule]:
    """A trained end-to-end model and its data module, rebuilt from a training checkpoint
    (``data_root``, ``batch_size``, ``max_images``: override the data module's root, eval
    batch size and number of eval images; ``camera``: as for :func:`load_model`)."""
    from captioning.datamodule import CaptionDataModule

    module, raw = load_model(ckpt, device, camera)
    data_hp = {
        k: v for k, v in raw.get("datamodule_hyper_parameters", {}).items() if not k.startswith("_")
    }
    data_hp.update(generate_embedded=False, num_workers=0, persistent_workers=False)
    if data_root:
        data_hp["root"] = data_root
    if batch_size:
        data_hp["eval_batch_size"] = batch_size
    data_hp["max_eval_images"] = max_images
    return module, CaptionDataModule(**data_hp)


def check_ckpt_path(args: Sequence[str]) -> None:
    """``--ckpt_path FILE`` must be a readable end-to-end training checkpoint: an empty,
    truncated or wrong-kind file (attacker, captioner, camera) is named before anything runs."""
    values = [b for a, b in itertools.pairwise(args) if a == "--ckpt_path"]
    values += [a.split("=", 1)[1] for a in args if a.startswith("--ckpt_path=")]
    for value in values:
        if value in ("last", "best", "hpc", "registry", "null", "None") or value.startswith(
            "registry:"
        ):
            continue
        try:
            kind = checkpoint_kind(read_checkpoint(value))
        except (OSError, ValueError) as err:
            raise type(err)(f"--ckpt_path: {err}") from err
        if kind != "training":
            raise ValueError(
                f"--ckpt_path {value} is {describe_checkpoint_kind(kind)}, not a privcam "
                "training checkpoint (runs/…/checkpoints/last.ckpt or best.ckpt)"
            )


def load_captioner_weights(
    captioner: Captioner, ckpt: str | Path, label_head: torch.nn.Module | None = None
) -> None:
    """Copy the captioner weights of a training checkpoint into ``captioner`` (same sizes),
    and its scene-label head into ``label_head`` when both have one."""
    path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.init_from: checkpoint {path} not found (expected runs/…/checkpoints/best.ckpt)"
        )
    state = read_checkpoint(path).get("state_dict", {})
    prefix = "captioner."
    weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise ValueError(
            f"model.init_from: {path} holds no captioner weights (not a privcam "
            "training checkpoint)"
        )
    head = {k[len("label_head.") :]: v for k, v in state.items() if k.startswith("label_head.")}
    try:
        captioner.load_state_dict(weights)
        if label_head is not None and head:
            label_head.load_state_dict(head)
    except RuntimeError as err:
        raise ValueError(
            f"model.init_from: the captioner in {path} does not fit this model's captioner "
            f"settings or vocabulary (train both on the same data with the same sizes): "
            f"{str(err).splitlines()[0]}"
        ) from err
    log.info("captioner initialised from %s", path)

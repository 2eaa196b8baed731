"""Scene images for an attack run: the embedded set, a COCO/Karpathy data root or a folder of
images, resized as in training, with face boxes (and identities) where the source has them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from captioning.images import CorruptImageError, load_image

__all__ = ["IMAGE_SUFFIXES", "Box", "ImageSet", "load_image_set", "make_embedded_set"]

log = logging.getLogger("attacks.data")  # the attack data's log lines keep their name

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
Box = tuple[int, int, int, int]


@dataclass
class ImageSet:
    """Scene images with optional face annotations.

    ``images``: (N, H, W, 3) uint8; ``faces[i]``: (x, y, w, h) boxes of image i; ``identities[i]``:
    one label per box (None when unknown: every face instance is its own identity).
    """

    images: np.ndarray
    names: list[str]
    faces: list[list[Box]] | None = None
    identities: list[list[str]] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                f"images must be (N, H, W, 3) uint8, got {self.images.shape} {self.images.dtype}"
            )
        n = len(self.images)
        for name, value in (
            ("names", self.names),
            ("faces", self.faces),
            ("identities", self.identities),
        ):
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: Sequence[int]) -> ImageSet:
        idx = list(index)
        return ImageSet(
            self.images[idx],
            [self.names[i] for i in idx],
            None if self.faces is None else [self.faces[i] for i in idx],
            None if self.identities is None else [self.identities[i] for i in idx],
            self.source,
        )


def _resize_boxes(boxes: Sequence[Box], width: int, height: int, size: int) -> list[Box]:
    """Face boxes (x, y, w, h) of a ``width`` × ``height`` image after training's resize of the
    whole frame to ``size``² (``captioning.images.load_image``); boxes under 4 px are dropped."""
    sx, sy = size / width, size / height
    out = []
    for bx, by, bw, bh in boxes:
        nx, ny = max(round(bx * sx), 0), max(round(by * sy), 0)
        nw = min(round(bw * sx), size - nx)
        nh = min(round(bh * sy), size - ny)
        if nw >= 4 and nh >= 4:
            out.append((nx, ny, nw, nh))
    return out


def _parse_boxes(entry: dict[str, Any]) -> list[Box]:
    boxes = []
    for face in entry.get("faces", []) or []:
        box = face.get("bbox") if isinstance(face, dict) else face
        if box is None or len(box) != 4:
            raise ValueError(f"face annotation {face!r} is not an [x, y, w, h] box")
        boxes.append(tuple(round(float(v)) for v in box))
    return boxes


def make_embedded_set(
    num_images: int = 300,
    image_size: int = 128,
    seed: int = 0,
    split: str = "test",
    first: int = 0,
) -> ImageSet:
    """The embedded scenes ``first`` … ``first + num_images - 1`` of ``captioning.synthetic``
    (identical pixels to what its CLI writes for ``split``), with face boxes and LFW
    identities; any index range can be generated, so a pool of pairs can grow on demand."""
    from captioning.scene_drawing import draw_scene
    from captioning.scene_grammar import sample_scene
    from captioning.synthetic import SPLIT_CODES

    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    images, names, faces, ids = [], [], [], []
    for i in range(first, first + num_images):
        rng = np.random.default_rng([seed, SPLIT_CODES[split], i])
        scene = sample_scene(rng)
        images.append(draw_scene(scene, image_size, rng))
        names.append(f"{split}_{i:06d}")
        faces.append([tuple(b) for b in scene.faces])
        ids.append([f"lfw{o.face_index}" for o in scene.objects if o.kind == "face"])
    return ImageSet(np.stack(images), names, faces, ids, source=f"embedded(seed={seed})")


def _is_data_root(root: Path) -> bool:
    """A COCO/Karpathy data root: a Karpathy split file or COCO caption files."""
    from captioning.coco import KARPATHY_FILE

    return (root / KARPATHY_FILE).is_file() or any((root / "annotations").glob("captions_*.json"))


def _root_entries(root: Path, split: str | None) -> tuple[list[tuple[Path, list[Box]]], bool]:
    """(image file, face boxes) of a data root's split (None: every split), and whether the
    annotations have face entries at all; read by the
    captioning reader (``captioning.coco.load_records``: Karpathy train includes restval; COCO
    caption files only, never ``instances_*``)."""
    from captioning.coco import SPLITS, load_records

    if split is not None and split not in SPLITS:
        raise ValueError(
            f"--split {split!r}: use one of {', '.join(SPLITS)} (train includes restval) or all"
        )
    records, absent = [], []
    for name in SPLITS if split is None else (split,):
        try:
            records += load_records(root, name)
        except FileNotFoundError as err:  # e.g. COCO caption files have no test split
            if split is not None:
                raise
            absent.append(err)
    if not records:
        raise absent[0]
    missing = [r.path for r in records if not r.path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"image {missing[0]} listed under {root} not found "
            f"({len(missing)} missing); check --images points at the data root"
        )
    annotated = any("faces" in r.info() for r in records)
    return [(r.path, _parse_boxes(r.info())) for r in records], annotated


def load_image_set(
    source: str | Path,
    image_size: int = 128,
    max_images: int | None = None,
    split: str | None = "test",
    seed: int = 0,
) -> ImageSet:
    """Load scene images for an attack run.

    Args:
        source: "embedded" (generated, see :func:`make_embedded_set`), a COCO/Karpathy data
            root (``dataset_coco.json`` or ``annotations/captions_*.json``, read by
            ``captioning.coco``; face boxes come from their ``faces`` entries when present), or
            a folder of PNG/JPEG images.
        image_size: square side the images are resized to (as in training: the whole frame,
            bilinear; ``captioning.images.load_image``).
        max_images: keep at most this many (the first ones, in sorted order); for "embedded"
            the number generated (default 300).
        split: split of a data root: train (with restval), val or test (None: all).

    Returns:
        ImageSet with (N, image_size, image_size, 3) uint8 images.
    """
    if max_images is not None and max_images < 1:
        raise ValueError(f"--max-images must be >= 1, got {max_images}; leave it out for all")
    if image_size < 1:
        raise ValueError(f"--image-size must be >= 1, got {image_size}")
    if str(source) == "embedded":
        return make_embedded_set(max_images or 300, image_size, seed)
    root = Path(source)
    if not root.exists():
        raise FileNotFoundError(
            f"--images {root} does not exist; pass a folder of images, a "
            "COCO/Karpathy data root, or 'embedded'"
        )
    if root.is_file():
        raise ValueError(f"--images {root} is a file; pass the folder that contains the images")
    if _is_data_root(root):
        entries, has_boxes = _root_entries(root, split)
    else:
        paths = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        entries = [(p, []) for p in paths]
        has_boxes = False
    if not entries:
        raise FileNotFoundError(
            f"no images in {root} (looked for {', '.join(IMAGE_SUFFIXES)} files, "
            "dataset_coco.json and annotations/captions_*.json); pass a folder with images or "
            "'embedded'"
        )
    images, names, faces, skipped = [], [], [], []
    for path, boxes in entries:
        if max_images is not None and len(images) == max_images:
            break
        try:  # the training pipeline's decoding and resize (whole frame, bilinear)
            arr = load_image(path, image_size)
            if boxes:
                with Image.open(path) as img:
                    boxes = _resize_boxes(boxes, *img.size, image_size)
        except (CorruptImageError, OSError) as err:
            log.warning("skipping image %s: cannot decode it (%s)", path, err)
            skipped.append(path.name)
            continue
        images.append(arr)
        names.append(path.stem)
        faces.append(list(boxes))
    if skipped:
        log.warning(
            "skipped %d corrupt image(s) in %s: %s",
            len(skipped),
            root,
            ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""),
        )
    if not images:
        raise ValueError(f"no readable images in {root}: all {len(skipped)} are corrupt")
    log.info("loaded %d images from %s (face boxes: %s)", len(images), root, has_boxes)
    return ImageSet(np.stack(images), names, faces if has_boxes else None, None, str(root))

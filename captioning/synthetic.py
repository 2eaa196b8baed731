"""Embedded caption data set: procedurally drawn scenes with faces, in COCO + Karpathy format.

Each image shows one or two objects on a textured background. Objects are shapes (circle,
square, triangle, star, ring, cross, diamond) in one of seven colours and two sizes, or a
person's face (the 100 face crops of ``skimage.data.lfw_subset()``, upscaled). Two objects stand
in a spatial relation (left of / right of / above / below). Backgrounds are striped, checkered,
noisy, gradient or dotted. Every image gets 5 differently worded captions from a small grammar,
e.g. "a large blue square above a small green triangle on a striped background".

Written layout (same formats as COCO 2014, so the COCO loaders read it unchanged)::

    <out>/images/{train,val,test}_000000.png
    <out>/annotations/captions_train2014.json   COCO captions: Karpathy train images
    <out>/annotations/captions_val2014.json     COCO captions: restval + val + test images
    <out>/dataset_coco.json                     Karpathy split file (train/restval/val/test)

As in COCO, ``restval`` (10 % of the training images) lives in the val caption file. Extra
fields on every image entry (both files; standard readers ignore them):

* ``has_face`` and ``faces``: a list of ``{"bbox": [x, y, w, h], "identity": k}`` in pixels of
  the written image (COCO bbox convention); ``identity`` indexes ``skimage.data.lfw_subset()``.
* ``scene``: the generator's ground truth, ``{"background": "stripes", "relation": "left" |
  null, "objects": [{"kind", "colour", "size", "centre": [x, y], "bbox": [x, y, w, h]}]}``
  (``kind`` a shape or ``"face"``, ``colour`` null for faces, ``centre`` in [0, 1] of the image
  width/height, ``relation`` that of ``objects[0]`` to ``objects[1]``). The grounding metric
  (``captioning.grounding``) scores captions against it.

Generation is deterministic: image ``i`` of split ``s`` depends only on ``(seed, s, i)``.

CLI: ``python -m captioning.synthetic --out data/synthetic --seed 0 --train 3000 --val 300
--test 300 --size 128``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "COLOURS",
    "SHAPES",
    "Scene",
    "draw_scene",
    "make_captions",
    "sample_scene",
    "write_dataset",
]

logger = logging.getLogger(__name__)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 70, 230),
    "yellow": (240, 220, 30),
    "purple": (150, 40, 190),
    "orange": (250, 140, 20),
    "white": (250, 250, 250),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross", "diamond")
BACKGROUNDS: dict[str, str] = {
    "stripes": "striped",
    "checks": "checkered",
    "noise": "noisy",
    "gradient": "gradient",
    "dots": "dotted",
}
RELATIONS: dict[str, str] = {
    "left": "to the left of",
    "right": "to the right of",
    "above": "above",
    "below": "below",
}
_INVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


@dataclass
class SceneObject:
    kind: str  # a shape name or "face"
    colour: str | None  # None for faces
    size: str  # "small" | "large"
    centre: tuple[float, float]  # (x, y) in [0, 1]
    face_index: int = -1
    bbox: list[int] = field(default_factory=list)  # [x, y, w, h] px, filled by draw_scene

    def to_dict(self) -> dict[str, Any]:
        """Ground-truth entry written into the data set files (``scene.objects[i]``)."""
        return {
            "kind": self.kind,
            "colour": self.colour,
            "size": self.size,
            "centre": [round(c, 4) for c in self.centre],
            "bbox": list(self.bbox),
        }

    def phrase(self, rng: np.random.Generator, detail: float) -> str:
        """Noun phrase, attributes dropped at random (``detail`` = keep probability)."""
        words = []
        if rng.random() < detail:
            words.append(self.size)
        if self.colour is not None and rng.random() < max(detail, 0.7):
            words.append(self.colour)
        words.append(self.kind)
        return " ".join(words)


@dataclass
class Scene:
    background: str
    objects: list[SceneObject]
    relation: str | None = None  # relation of objects[0] to objects[1]
    faces: list[list[int]] = field(default_factory=list)  # [x, y, w, h] boxes

    def to_dict(self) -> dict[str, Any]:
        """The ``scene`` field of an image entry (see the module docstring)."""
        return {
            "background": self.background,
            "relation": self.relation,
            "objects": [o.to_dict() for o in self.objects],
        }


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def sample_scene(rng: np.random.Generator, face_probability: float = 0.4) -> Scene:
    """Draw the content of one scene (no pixels)."""
    background = str(rng.choice(list(BACKGROUNDS)))
    n_objects = 1 if rng.random() < 0.35 else 2
    has_face = rng.random() < face_probability
    kinds = [str(rng.choice(SHAPES)) for _ in range(n_objects)]
    if has_face:
        kinds[int(rng.integers(n_objects))] = "face"
    colours = list(rng.choice(list(COLOURS), size=n_objects, replace=False))
    sizes = [str(rng.choice(["small", "large"])) for _ in range(n_objects)]
    objects = []
    relation = None
    if n_objects == 1:
        centre = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)))
        centres = [centre]
    else:
        relation = str(rng.choice(list(RELATIONS)))
        main, other = float(rng.uniform(0.22, 0.3)), float(rng.uniform(0.7, 0.78))
        cross = [float(rng.uniform(0.35, 0.65)) for _ in range(2)]
        if relation in ("left", "above"):
            along = [main, other]
        else:
            along = [other, main]
        if relation in ("left", "right"):
            centres = [(along[0], cross[0]), (along[1], cross[1])]
        else:
            centres = [(cross[0], along[0]), (cross[1], along[1])]
    for kind, colour, size, centre in zip(kinds, colours, sizes, centres, strict=True):
        objects.append(
            SceneObject(
                kind=kind,
                colour=None if kind == "face" else str(colour),
                size=size,
                centre=centre,
                face_index=int(rng.integers(100)) if kind == "face" else -1,
            )
        )
    return Scene(background, objects, relation)


def make_captions(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` differently worded captions of a scene."""
    bg = BACKGROUNDS[scene.background]
    captions: list[str] = []
    attempts = 0
    while len(captions) < n:
        attempts += 1
        detail = 1.0 if attempts <= 2 else 0.6
        if len(scene.objects) == 1:
            a = _article(scene.objects[0].phrase(rng, detail))
            templates = [
                f"{a} on {_article(bg)} background",
                f"there is {a} on {_article(bg)} background",
                f"a picture of {a}",
                f"{_article(bg)} background with {a}",
                f"{a} in the middle of the image",
                f"an image showing {a}",
                f"{a} in front of {_article(bg)} pattern",
            ]
        else:
            first, second = scene.objects
            a = _article(first.phrase(rng, detail))
            b = _article(second.phrase(rng, detail))
            rel = RELATIONS[scene.relation or "left"]
            inv = RELATIONS[_INVERSE[scene.relation or "left"]]
            templates = [
                f"{a} {rel} {b}",
                f"{b} {inv} {a}",
                f"{a} {rel} {b} on {_article(bg)} background",
                f"{a} and {b} on {_article(bg)} background",
                f"there is {a} {rel} {b}",
                f"{_article(bg)} background with {a} and {b}",
                f"an image of {b} {inv} {a}",
            ]
        caption = str(templates[int(rng.integers(len(templates)))])
        if caption not in captions or attempts > 50:
            captions.append(caption)
    return captions


@lru_cache(maxsize=1)
def _faces() -> np.ndarray:
    from skimage.data import lfw_subset

    return np.asarray(lfw_subset()[:100], dtype=np.float32)  # (100, 25, 25) in [0, 1]


def _background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    tone_a = rng.uniform(60, 200, size=3) * np.array([1.0, 1.0, 1.0])
    grey = rng.uniform(0.5, 1.0)
    tone_a = grey * tone_a.mean() + (1 - grey) * tone_a  # low saturation
    tone_b = np.clip(tone_a + rng.choice([-1, 1]) * rng.uniform(35, 60), 0, 255)
    if kind == "stripes":
        period = rng.uniform(0.08, 0.2)
        coord = xx if rng.random() < 0.5 else yy
        mask = (np.floor(coord / period) % 2).astype(np.float32)
    elif kind == "checks":
        period = rng.uniform(0.08, 0.2)
        mask = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32)
    elif kind == "noise":
        coarse = rng.random((size // 8 + 1, size // 8 + 1)).astype(np.float32)
        mask = np.kron(coarse, np.ones((8, 8), dtype=np.float32))[:size, :size]
        mask = 0.6 * mask + 0.4 * rng.random((size, size)).astype(np.float32)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        mask = np.cos(angle) * xx + np.sin(angle) * yy
        mask = (mask - mask.min()) / max(float(np.ptp(mask)), 1e-6)
    elif kind == "dots":
        period = rng.uniform(0.1, 0.18)
        fx, fy = (xx / period) % 1 - 0.5, (yy / period) % 1 - 0.5
        mask = (fx**2 + fy**2 < 0.09).astype(np.float32)
    else:
        raise ValueError(f"unknown background {kind!r}; choose from {list(BACKGROUNDS)}")
    img = tone_a[None, None, :] * (1 - mask[..., None]) + tone_b[None, None, :] * mask[..., None]
    return img.astype(np.float32)


def _shape_mask(
    kind: str, size: int, cx: float, cy: float, r: float, rotation: float
) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    dist = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx) - rotation
    if kind == "circle":
        return dist <= r
    if kind == "ring":
        return (dist <= r) & (dist >= 0.55 * r)
    if kind == "square":
        return (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    if kind == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.1 * r
    if kind == "cross":
        w = 0.33 * r
        return ((np.abs(dx) <= w) & (np.abs(dy) <= r)) | ((np.abs(dy) <= w) & (np.abs(dx) <= r))
    if kind == "triangle":
        # equilateral, pointing up, circumradius 1.2 r: inside three half-planes
        rt = 1.2 * r
        return (dy <= 0.5 * rt) & (np.sqrt(3) * dx - dy <= rt) & (-np.sqrt(3) * dx - dy <= rt)
    if kind == "star":
        k = 5
        phase = (theta * k / (2 * np.pi)) % 1.0
        tri = np.abs(phase - 0.5) * 2  # 1 at tips, 0 between
        radius = r * (0.45 + 0.55 * tri)
        return dist <= radius
    raise ValueError(f"unknown shape {kind!r}; choose from {SHAPES}")


def _mask_box(mask: np.ndarray) -> list[int]:
    """Tight ``[x, y, w, h]`` box (px) of a boolean ``(H, W)`` mask; empty mask → zeros."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0, 0, 0, 0]
    return [
        int(xs.min()),
        int(ys.min()),
        int(xs.max() - xs.min() + 1),
        int(ys.max() - ys.min() + 1),
    ]


def draw_scene(scene: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    """Render a scene to uint8 ``(size, size, 3)``; fills ``scene.faces`` with face boxes."""
    img = _background(scene.background, size, rng)
    scene.faces = []
    for obj in scene.objects:
        scale = 0.13 if obj.size == "small" else 0.22  # half-size as a fraction of the image
        jitter = rng.uniform(0.9, 1.1)
        r = scale * jitter * size
        cx, cy = obj.centre[0] * size, obj.centre[1] * size
        if obj.kind == "face":
            side = max(round(2 * r), 4)
            face = Image.fromarray((_faces()[obj.face_index] * 255).astype(np.uint8))
            face = np.asarray(face.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)
            x0 = int(np.clip(round(cx - side / 2), 0, size - side))
            y0 = int(np.clip(round(cy - side / 2), 0, size - side))
            img[y0 : y0 + side, x0 : x0 + side, :] = face[..., None]
            scene.faces.append([x0, y0, side, side])
            obj.bbox = [x0, y0, side, side]
        else:
            rotation = float(rng.uniform(-0.2, 0.2))
            mask = _shape_mask(obj.kind, size, cx, cy, r, rotation)
            obj.bbox = _mask_box(mask)
            colour = np.asarray(COLOURS[obj.colour or "white"], dtype=np.float32)
            colour = np.clip(colour + rng.normal(0, 8, size=3), 0, 255)
            img[mask] = colour
    img += rng.normal(0, 3.0, size=img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _generate(split: str, index: int, seed: int, size: int):
    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    scene = sample_scene(rng)
    image = draw_scene(scene, size, rng)
    captions = make_captions(scene, rng)
    return image, captions, scene


def write_dataset(
    out: str | Path,
    seed: int = 0,
    train: int = 3000,
    val: int = 300,
    test: int = 300,
    size: int = 128,
    restval_fraction: float = 0.1,
) -> Path:
    """Generate and write the data set (see module docstring). Returns ``out``."""
    for name, value in (("train", train), ("val", val), ("test", test)):
        if value < 0:
            raise ValueError(f"--{name} must be >= 0, got {value}")
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    karpathy_images = []
    coco = {
        name: {
            "info": {
                "description": f"privcam synthetic captions ({name}), seed {seed}",
                "version": "1.0",
                "year": 2024,
            },
            "licenses": [],
            "images": [],
            "annotations": [],
        }
        for name in ("train", "val")
    }
    image_id = 0
    sentence_id = 0
    n_restval = round(restval_fraction * train)
    for split, count in (("train", train), ("val", val), ("test", test)):
        for i in range(count):
            image, captions, scene = _generate(split, i, seed, size)
            image_id += 1
            filename = f"{split}_{i:06d}.png"
            Image.fromarray(image).save(out / "images" / filename, optimize=False)
            karpathy_split = split
            if split == "train" and i >= train - n_restval:
                karpathy_split = "restval"
            coco_file = "train" if karpathy_split == "train" else "val"
            faces = [
                {"bbox": o.bbox, "identity": o.face_index}
                for o in scene.objects
                if o.kind == "face"
            ]
            truth = scene.to_dict()
            coco[coco_file]["images"].append(
                {
                    "id": image_id,
                    "file_name": filename,
                    "width": size,
                    "height": size,
                    "has_face": bool(faces),
                    "faces": faces,
                    "scene": truth,
                }
            )
            sentences = []
            for caption in captions:
                sentence_id += 1
                coco[coco_file]["annotations"].append(
                    {"id": sentence_id, "image_id": image_id, "caption": caption}
                )
                sentences.append(
                    {
                        "raw": caption,
                        "tokens": caption.split(),
                        "imgid": image_id - 1,
                        "sentid": sentence_id,
                    }
                )
            karpathy_images.append(
                {
                    "filepath": "images",
                    "filename": filename,
                    "split": karpathy_split,
                    "imgid": image_id - 1,
                    "cocoid": image_id,
                    "sentids": [s["sentid"] for s in sentences],
                    "sentences": sentences,
                    "has_face": bool(faces),
                    "faces": faces,
                    "scene": truth,
                }
            )
    for name, content in coco.items():
        (out / "annotations" / f"captions_{name}2014.json").write_text(json.dumps(content))
    (out / "dataset_coco.json").write_text(
        json.dumps({"dataset": "coco", "images": karpathy_images})
    )
    logger.info("wrote %d images to %s", image_id, out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m captioning.synthetic", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=3000, help="training images")
    parser.add_argument("--val", type=int, default=300, help="validation images")
    parser.add_argument("--test", type=int, default=300, help="test images")
    parser.add_argument("--size", type=int, default=128, help="image size in pixels")
    args = parser.parse_args(argv)
    write_dataset(args.out, args.seed, args.train, args.val, args.test, args.size)
    print(f"wrote {args.train + args.val + args.test} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

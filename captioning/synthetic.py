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

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from captioning.scene_drawing import draw_scene
from captioning.scene_grammar import COLOURS, SHAPES, Scene, make_captions, sample_scene

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

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def _generate(split: str, index: int, seed: int, size: int):
    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    scene = sample_scene(rng)
    image = draw_scene(scene, size, rng)
    captions = make_captions(scene, rng)
    return image, captions, scene


def _image_entries(
    image_id: int,
    sentence_ids: Sequence[int],
    filename: str,
    karpathy_split: str,
    size: int,
    captions: list[str],
    scene: Scene,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """One image's entries in the written files: (COCO image entry, its COCO caption
    annotations, Karpathy image entry). ``image_id`` is the 1-based COCO id, ``sentence_ids``
    one id per caption."""
    faces = [{"bbox": o.bbox, "identity": o.face_index} for o in scene.objects if o.kind == "face"]
    truth = scene.to_dict()
    coco_image = {
        "id": image_id,
        "file_name": filename,
        "width": size,
        "height": size,
        "has_face": bool(faces),
        "faces": faces,
        "scene": truth,
    }
    pairs = list(zip(sentence_ids, captions, strict=True))
    annotations = [{"id": s, "image_id": image_id, "caption": c} for s, c in pairs]
    sentences = [
        {"raw": c, "tokens": c.split(), "imgid": image_id - 1, "sentid": s} for s, c in pairs
    ]
    karpathy_image = {
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
    return coco_image, annotations, karpathy_image


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
            sentence_ids = range(sentence_id + 1, sentence_id + 1 + len(captions))
            sentence_id += len(captions)
            coco_image, annotations, karpathy_image = _image_entries(
                image_id, sentence_ids, filename, karpathy_split, size, captions, scene
            )
            coco[coco_file]["images"].append(coco_image)
            coco[coco_file]["annotations"] += annotations
            karpathy_images.append(karpathy_image)
    for name, content in coco.items():
        (out / "annotations" / f"captions_{name}2014.json").write_text(json.dumps(content))
    (out / "dataset_coco.json").write_text(
        json.dumps({"dataset": "coco", "images": karpathy_images})
    )
    logger.info("wrote %d images to %s", image_id, out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m captioning.synthetic``: one-line errors (exit 2) like every entry point."""
    from optics.cli_config import ArgumentParser
    from optics.cli_errors import positive_int, run_cli

    def _run(args_list: list[str]) -> int:
        parser = ArgumentParser(
            prog="python -m captioning.synthetic", description=__doc__.split("\n\n")[0]
        )
        parser.add_argument("--out", required=True, help="output folder")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--train", type=positive_int, default=3000, help="training images")
        parser.add_argument("--val", type=positive_int, default=300, help="validation images")
        parser.add_argument("--test", type=positive_int, default=300, help="test images")
        parser.add_argument("--size", type=positive_int, default=128, help="image size (px)")
        args = parser.parse_args(args_list)
        write_dataset(args.out, args.seed, args.train, args.val, args.test, args.size)
        print(f"wrote {args.train + args.val + args.test} images to {args.out}")
        return 0

    return run_cli(_run, argv)


if __name__ == "__main__":
    sys.exit(main())

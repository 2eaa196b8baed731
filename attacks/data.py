"""Attack data: image sets (folder, COCO/Karpathy root or the embedded set), simulated captures
and (capture, original) pairs on disk.

Pair layout written by :func:`simulate_pairs` (8-bit PNG, loss-free for 8-bit sensors)::

    <out>/pairs/train/capture/000000.png   <out>/pairs/train/original/000000.png
    <out>/pairs/test/capture/000000.png    <out>/pairs/test/original/000000.png
    <out>/pairs/pairs.json                 names, split, face boxes, identities, camera, seed
    <out>/pairs/psf.pt                     the PSF (Λ, K, K) the captures were made with
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from captioning.images import CorruptImageError, load_image

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageSet",
    "PairSet",
    "load_image_set",
    "load_pairs",
    "make_embedded_set",
    "simulate_pairs",
    "to_tensor",
    "to_uint8",
]

log = logging.getLogger(__name__)

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


@dataclass
class PairSet:
    """Simulated (capture, original) pairs, split into attacker-train and attacker-test.

    ``captures``/``originals``: (N, H, W, 3) uint8; ``train``/``test``: index arrays;
    ``psf``: (Λ, K, K) float32 or None (camera without a lens).
    """

    captures: np.ndarray
    originals: np.ndarray
    train: np.ndarray
    test: np.ndarray
    names: list[str]
    faces: list[list[Box]] | None = None
    identities: list[list[str]] | None = None
    psf: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.captures.shape != self.originals.shape:
            raise ValueError(
                f"mismatched pairs: {len(self.captures)} captures of shape "
                f"{self.captures.shape[1:]} vs {len(self.originals)} originals of shape "
                f"{self.originals.shape[1:]}; every capture needs its original (same count, "
                "same size)"
            )

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray, list, list | None]:
        """(captures, originals, faces or [], identities) of "train" or "test"."""
        if which not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {which!r}")
        idx = self.train if which == "train" else self.test
        faces = [self.faces[i] for i in idx] if self.faces is not None else []
        ids = [self.identities[i] for i in idx] if self.identities is not None else None
        return self.captures[idx], self.originals[idx], faces, ids


def to_tensor(images: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 3, H, W) float32 in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float() / 255


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] → (N, H, W, 3) uint8 (rounded, clipped)."""
    x = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


# --------------------------------------------------------------------------- loading


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
    num_images: int = 300, image_size: int = 128, seed: int = 0, split: str = "test"
) -> ImageSet:
    """The embedded scenes of ``captioning.synthetic`` (identical pixels to what its CLI writes
    for ``split``), with face boxes and LFW identities."""
    from captioning.synthetic import SPLIT_CODES, draw_scene, sample_scene

    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
    images, names, faces, ids = [], [], [], []
    for i in range(num_images):
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


# --------------------------------------------------------------------------- captures


def _split_indices(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 images to split into attacker train/test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_train = min(max(round(train_fraction * n), 1), n - 1)
    return np.sort(order[:n_train]), np.sort(order[n_train:])


@torch.no_grad()
def simulate_pairs(
    camera: torch.nn.Module,
    image_set: ImageSet,
    out_dir: str | Path | None = None,
    seed: int = 0,
    train_fraction: float = 2 / 3,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> PairSet:
    """Capture every image with ``camera`` in eval mode (sensor noise on, seeded) and split the
    pairs 2:1 into attacker-train / attacker-test; optionally write them as 8-bit PNGs.

    Args:
        camera: an ``optics.Camera`` (its ``capture`` and ``psf`` are used).
        image_set: scenes, (N, H, W, 3) uint8.
        out_dir: where ``pairs/`` is written (None: nothing written).

    Returns:
        PairSet with uint8 captures and the (Λ, K, K) PSF (None without a lens).
    """
    camera = camera.to(device).eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    captures = []
    psf = None
    for start in range(0, len(image_set), batch_size):
        batch = to_tensor(image_set.images[start : start + batch_size], device)
        captured, psf_b = camera.capture(batch, generator=gen)
        captures.append(to_uint8(captured))
        psf = psf_b if psf_b is not None else psf
    train, test = _split_indices(len(image_set), train_fraction, seed)
    pairs = PairSet(
        np.concatenate(captures),
        image_set.images,
        train,
        test,
        list(image_set.names),
        image_set.faces,
        image_set.identities,
        None if psf is None else psf.detach().float().cpu(),
        {
            "seed": seed,
            "source": image_set.source,
            "train_fraction": train_fraction,
            "camera": getattr(getattr(camera, "config", None), "to_dict", dict)(),
        },
    )
    if out_dir is not None:
        write_pairs(pairs, Path(out_dir) / "pairs")
    return pairs


def write_pairs(pairs: PairSet, folder: str | Path) -> Path:
    """Write a PairSet as PNG files + ``pairs.json`` (+ ``psf.pt``). Returns the folder."""
    folder = Path(folder)
    for split, idx in (("train", pairs.train), ("test", pairs.test)):
        for kind, arr in (("capture", pairs.captures), ("original", pairs.originals)):
            (folder / split / kind).mkdir(parents=True, exist_ok=True)
            for j, i in enumerate(idx):
                Image.fromarray(arr[i]).save(folder / split / kind / f"{j:06d}.png")
    manifest = {
        split: [
            {
                "file": f"{j:06d}.png",
                "name": pairs.names[i],
                "faces": [list(b) for b in pairs.faces[i]] if pairs.faces is not None else None,
                "identities": pairs.identities[i] if pairs.identities is not None else None,
            }
            for j, i in enumerate(idx)
        ]
        for split, idx in (("train", pairs.train), ("test", pairs.test))
    }
    manifest["meta"] = pairs.meta
    (folder / "pairs.json").write_text(json.dumps(manifest, indent=1, default=str))
    if pairs.psf is not None:
        torch.save(pairs.psf, folder / "psf.pt")
    log.info("wrote %d train + %d test pairs to %s", len(pairs.train), len(pairs.test), folder)
    return folder


def _read_folder(folder: Path) -> tuple[list[str], np.ndarray | None]:
    files = (
        sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if folder.is_dir()
        else []
    )
    if not files:
        return [], None
    return [p.name for p in files], np.stack(
        [np.asarray(Image.open(p).convert("RGB")) for p in files]
    )


def load_pairs(folder: str | Path) -> PairSet:
    """Read pairs written by :func:`write_pairs` (or any ``{train,test}/{capture,original}``
    folders of equally named PNGs)."""
    folder = Path(folder)
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for split in ("train", "test"):
        arrays[split] = {}
        names = {}
        for kind in ("capture", "original"):
            names[kind], arr = _read_folder(folder / split / kind)
            if arr is None:
                raise FileNotFoundError(
                    f"no images in {folder / split / kind}; a pair folder needs "
                    "{train,test}/{capture,original}/*.png (see attacks.data.write_pairs)"
                )
            arrays[split][kind] = arr
        if names["capture"] != names["original"]:
            raise ValueError(
                f"mismatched pair counts in {folder / split}: {len(names['capture'])} captures vs "
                f"{len(names['original'])} originals (or different file names); every "
                "capture/NNN.png needs an original/NNN.png"
            )
    manifest_path = folder / "pairs.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    faces, ids, names_all = [], [], []
    for split in ("train", "test"):
        entries = manifest.get(split) or [{} for _ in range(len(arrays[split]["capture"]))]
        for e in entries:
            faces.append([tuple(b) for b in e.get("faces") or []])
            ids.append(e.get("identities"))
            names_all.append(e.get("name", e.get("file", "")))
    n_train = len(arrays["train"]["capture"])
    n = n_train + len(arrays["test"]["capture"])
    has_faces = (
        bool(manifest) and manifest["train"] and manifest["train"][0].get("faces") is not None
    )
    psf_path = folder / "psf.pt"
    return PairSet(
        np.concatenate([arrays["train"]["capture"], arrays["test"]["capture"]]),
        np.concatenate([arrays["train"]["original"], arrays["test"]["original"]]),
        np.arange(n_train),
        np.arange(n_train, n),
        names_all,
        faces if has_faces else None,
        ids if has_faces and all(i is not None for i in ids) else None,
        torch.load(psf_path, weights_only=True) if psf_path.is_file() else None,
        manifest.get("meta", {}),
    )

"""Simulated (capture, original) pairs: capture scenes with a camera, split them into
attacker-train / attacker-test, write them as PNGs and read them back; and the uint8 ↔ float
tensor conversion the attackers work in.

Pair layout written by :func:`simulate_pairs` (8-bit PNG, loss-free for 8-bit sensors)::

    <out>/pairs/train/capture/000000.png   <out>/pairs/train/original/000000.png
    <out>/pairs/test/capture/000000.png    <out>/pairs/test/original/000000.png
    <out>/pairs/pairs.json                 names, split, face boxes, identities, camera, seed
    <out>/pairs/psf.pt                     the PSF (Λ, K, K) the captures were made with
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .scenes import IMAGE_SUFFIXES, Box, ImageSet

__all__ = [
    "PairSet",
    "capture_images",
    "load_pairs",
    "simulate_pairs",
    "to_tensor",
    "to_uint8",
    "write_pairs",
]

log = logging.getLogger("attacks.data")  # the attack data's log lines keep their name


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


def _split_indices(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 images to split into attacker train/test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_train = min(max(round(train_fraction * n), 1), n - 1)
    return np.sort(order[:n_train]), np.sort(order[n_train:])


@torch.no_grad()
def capture_images(
    camera: torch.nn.Module,
    images: np.ndarray,
    seed: int,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, torch.Tensor | None]:
    """Capture (N, H, W, 3) uint8 scenes with ``camera`` in eval mode, sensor noise drawn from a
    generator seeded with ``seed``; returns ((N, H, W, 3) uint8 captures, (Λ, K, K) float32 PSF
    on the CPU, or None without a lens)."""
    camera = camera.to(device).eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    captures = []
    psf = None
    for start in range(0, len(images), batch_size):
        batch = to_tensor(images[start : start + batch_size], device)
        captured, psf_b = camera.capture(batch, generator=gen)
        captures.append(to_uint8(captured))
        psf = psf_b if psf_b is not None else psf
    return np.concatenate(captures), None if psf is None else psf.detach().float().cpu()


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
    captures, psf = capture_images(camera, image_set.images, seed, batch_size, device)
    train, test = _split_indices(len(image_set), train_fraction, seed)
    pairs = PairSet(
        captures,
        image_set.images,
        train,
        test,
        list(image_set.names),
        image_set.faces,
        image_set.identities,
        psf,
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

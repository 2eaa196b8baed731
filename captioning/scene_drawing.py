"""Render an embedded scene to pixels: a textured background, shapes in their colours and LFW
face crops, with light noise; each object's pixel box is filled in as it is drawn."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from captioning.scene_grammar import BACKGROUNDS, COLOURS, SHAPES, Scene

__all__ = ["draw_scene"]


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

"""Privacy metrics: SSIM / PSNR (batched torch), face detection and face re-identification.

SSIM follows Wang et al. 2004 as scikit-image computes it with ``gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1``: an 11-tap Gaussian window (σ 1.5,
truncated at 3.5σ), C1 = (0.01·L)², C2 = (0.03·L)², averaged over the 'valid' window positions
(skimage filters with reflection and then crops the 5-pixel border, which is the same thing),
then over the RGB channels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

__all__ = [
    "FaceDetector",
    "box_iou_xywh",
    "face_descriptor",
    "face_detection_rate",
    "face_reidentification",
    "mean_std",
    "psnr",
    "ssim",
]

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (x, y, w, h) in pixels


def _gaussian_1d(sigma: float, truncate: float, dtype: torch.dtype, device: torch.device):
    radius = int(truncate * sigma + 0.5)
    r = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    return (g / g.sum()).to(dtype)


def _band(n: int, g: torch.Tensor) -> torch.Tensor:
    """(n − len(g) + 1, n) matrix whose rows are ``g`` shifted by one: a 'valid' filter."""
    win = g.numel()
    m = torch.zeros(n - win + 1, n, dtype=g.dtype, device=g.device)
    idx = torch.arange(n - win + 1, device=g.device)[:, None] + torch.arange(win, device=g.device)
    return m.scatter_(1, idx, g.expand(n - win + 1, win).contiguous())


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
    truncate: float = 3.5,
) -> torch.Tensor:
    """Structural similarity per image (mean over positions and channels).

    Args:
        x, y: (B, C, H, W), H and W >= 11 for the default window.

    Returns:
        (B,) SSIM, equal to skimage's ``structural_similarity(gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1, channel_axis=-1)`` per image.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(
            f"ssim needs two (B, C, H, W) tensors of the same shape, got {tuple(x.shape)} "
            f"and {tuple(y.shape)}"
        )
    dtype = x.dtype if x.is_floating_point() else torch.float32
    x, y = x.to(dtype), y.to(dtype)
    g = _gaussian_1d(sigma, truncate, dtype, x.device)
    win = g.numel()
    if min(x.shape[-2:]) < win:
        raise ValueError(
            f"images of {tuple(x.shape[-2:])} px are smaller than the {win}-px "
            "SSIM window; use images of at least 11×11"
        )
    h, w = x.shape[-2:]
    stack = torch.stack([x, y, x * x, y * y, x * y], dim=1)  # (B, 5, C, H, W)
    # 'valid' separable Gaussian filtering as banded matrix products (much faster than a
    # 1-channel conv2d on CPU): rows (H − win + 1, H), columns (W, W − win + 1).
    filtered = _band(h, g) @ stack @ _band(w, g).transpose(0, 1)
    mx, my, mxx, myy, mxy = filtered.unbind(1)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(-3, -2, -1))


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, 10·log10(L² / MSE) over all channels and pixels.

    Args:
        x, y: (B, C, H, W).

    Returns:
        (B,) in dB (inf for identical images), as skimage's ``peak_signal_noise_ratio``.
    """
    if x.shape != y.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    mse = ((x.double() - y.double()) ** 2).flatten(1).mean(dim=1)
    return (10 * torch.log10(data_range**2 / mse)).to(torch.float32)


def mean_std(values: torch.Tensor | np.ndarray | Sequence[float]) -> dict[str, float]:
    """{"mean", "std", "n"} of a 1-D collection (population std, as numpy)."""
    arr = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values, dtype=float)
    if arr.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


# --------------------------------------------------------------------------- faces


@lru_cache(maxsize=1)
def _cascade_file() -> str:
    from skimage.data import lbp_frontal_face_cascade_filename

    return lbp_frontal_face_cascade_filename()


@dataclass
class FaceDetector:
    """scikit-image's bundled LBP frontal-face cascade with fixed search parameters.

    ``min_size`` is in pixels (the cascade's own window is 24 px, so smaller faces are found
    only if the image is upscaled first: ``upscale``).
    """

    scale_factor: float = 1.2
    step_ratio: float = 1.0
    min_size: int = 20
    min_neighbor_number: int = 2
    intersection_score_threshold: float = 0.5
    upscale: float = 1.0

    def __post_init__(self) -> None:
        from skimage.feature import Cascade

        self._cascade = Cascade(_cascade_file())

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes (x, y, w, h) in one image (H, W, 3) uint8 or (H, W) float in [0, 1]."""
        from skimage.color import rgb2gray
        from skimage.transform import rescale

        gray = rgb2gray(image) if image.ndim == 3 else np.asarray(image, dtype=float)
        if gray.dtype == np.uint8:
            gray = gray / 255.0
        if self.upscale != 1.0:
            gray = rescale(gray, self.upscale, order=1, anti_aliasing=False)
        h, w = gray.shape
        dets = self._cascade.detect_multi_scale(
            gray,
            scale_factor=self.scale_factor,
            step_ratio=self.step_ratio,
            min_size=(self.min_size, self.min_size),
            max_size=(h, w),
            min_neighbor_number=self.min_neighbor_number,
            intersection_score_threshold=self.intersection_score_threshold,
        )
        s = 1.0 / self.upscale
        return [
            (round(d["c"] * s), round(d["r"] * s), round(d["width"] * s), round(d["height"] * s))
            for d in dets
        ]

    def detect_all(self, images: np.ndarray | Sequence[np.ndarray]) -> list[list[Box]]:
        """Boxes for each image of (N, H, W, 3) uint8."""
        return [self.detect(img) for img in images]


def box_iou_xywh(a: Sequence[Box], b: Sequence[Box]) -> torch.Tensor:
    """IoU matrix (len(a), len(b)) of (x, y, w, h) boxes (``torchvision.ops.box_iou``)."""
    from torchvision.ops import box_convert, box_iou

    def xyxy(boxes: Sequence[Box]) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        return box_convert(t, "xywh", "xyxy")

    return box_iou(xyxy(a), xyxy(b)).nan_to_num(0.0)  # 0/0 of empty boxes → no overlap


def face_detection_rate(
    detections: Sequence[Sequence[Box]],
    faces: Sequence[Sequence[Box]] | None,
    iou_threshold: float = 0.3,
) -> dict[str, float]:
    """How often the detector finds the known faces.

    With face boxes: ``rate`` = fraction of annotated faces matched by a detection with
    IoU >= ``iou_threshold``; ``false_positive_rate`` = fraction of face-free images with any
    detection. Without boxes (``faces`` None): ``rate`` = fraction of images with a detection.
    """
    if faces is None:
        hits = [len(d) > 0 for d in detections]
        return {
            "rate": float(np.mean(hits)) if hits else float("nan"),
            "n_faces": 0,
            "false_positive_rate": float("nan"),
            "annotated": False,
        }
    if len(faces) != len(detections):
        raise ValueError(f"{len(detections)} detection lists for {len(faces)} images")
    found, total, fp, empty = 0, 0, 0, 0
    for dets, boxes in zip(detections, faces, strict=True):
        if not boxes:
            empty += 1
            fp += bool(dets)
        total += len(boxes)
        if boxes and dets:
            found += int((box_iou_xywh(boxes, dets) >= iou_threshold).any(dim=1).sum())
    return {
        "rate": found / total if total else float("nan"),
        "n_faces": total,
        "false_positive_rate": fp / empty if empty else float("nan"),
        "annotated": True,
    }


def face_descriptor(crop: np.ndarray, size: int = 32) -> np.ndarray:
    """Fixed face descriptor: HOG (9 orientations, 8×8 cells, 2×2 blocks, L2-Hys) of the
    grey crop resized to size², standardised and L2-normalised.

    Args:
        crop: (h, w, 3) uint8 or (h, w) float.

    Returns:
        (D,) float64 unit vector.
    """
    from skimage.color import rgb2gray
    from skimage.feature import hog
    from skimage.transform import resize

    gray = rgb2gray(crop) if crop.ndim == 3 else np.asarray(crop, dtype=float)
    if gray.dtype == np.uint8:
        gray = gray / 255.0
    gray = resize(gray, (size, size), anti_aliasing=True)
    gray = (gray - gray.mean()) / (gray.std() + 1e-6)
    d = hog(
        gray,
        orientations=9,
        pixels_per_cell=(8, 8),
        cells_per_block=(2, 2),
        block_norm="L2-Hys",
        feature_vector=True,
    )
    return d / (np.linalg.norm(d) + 1e-12)


def _crop(image: np.ndarray, box: Sequence[int]) -> np.ndarray:
    x, y, w, h = (int(v) for v in box)
    return image[max(y, 0) : y + h, max(x, 0) : x + w]


def face_reidentification(
    queries: np.ndarray,
    originals: np.ndarray,
    faces: Sequence[Sequence[Box]],
    identities: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
    """Top-1 re-identification of faces in ``queries`` against a gallery of original faces.

    Every annotated face is cropped at its known box from the original (gallery) and from the
    query image (a capture or reconstruction); a query is re-identified when its nearest
    gallery descriptor (cosine) has the same identity. Identities default to one per face
    instance. ``chance`` is the expected top-1 of a random guess (mean over queries of
    #gallery entries with the query's identity / gallery size).

    Args:
        queries, originals: (N, H, W, 3) uint8.
        faces: per image, a list of (x, y, w, h) boxes.
        identities: per image, one label per box (e.g. the LFW index), or None.

    Returns:
        {"top1", "chance", "gallery_size"} (NaN when there are no faces).
    """
    if len(queries) != len(originals) or len(faces) != len(originals):
        raise ValueError(
            f"face re-ID needs one query and one box list per original, got "
            f"{len(queries)} queries, {len(originals)} originals, {len(faces)} lists"
        )
    gallery, probe, labels = [], [], []
    for i, boxes in enumerate(faces):
        for j, box in enumerate(boxes):
            if box[2] < 4 or box[3] < 4:
                continue
            gallery.append(face_descriptor(_crop(originals[i], box)))
            probe.append(face_descriptor(_crop(queries[i], box)))
            labels.append(identities[i][j] if identities is not None else f"{i}:{j}")
    n = len(gallery)
    if n == 0:
        return {"top1": float("nan"), "chance": float("nan"), "gallery_size": 0}
    sim = np.stack(probe) @ np.stack(gallery).T
    best = sim.argmax(axis=1)
    lab = np.asarray(labels)
    top1 = float(np.mean(lab[best] == lab))
    chance = float(np.mean([(lab == lab[q]).sum() / n for q in range(n)]))
    return {"top1": top1, "chance": chance, "gallery_size": n}

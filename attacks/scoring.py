"""Report rows: every reconstruction scored against the originals (SSIM, PSNR, face detection,
face re-identification), and the originals' own row, the ceiling of the face metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .metrics import FaceDetector, face_detection_rate, face_reidentification, mean_std, psnr, ssim
from .pairs import to_uint8
from .registry import AttackRun

__all__ = ["budget_status", "report_rows", "score_reconstruction", "subset_list"]


def subset_list(values: list | None, indices: np.ndarray) -> list | None:
    """``values`` (one per pair) at ``indices`` (e.g. the attacker-test pairs); None stays None."""
    return [values[i] for i in indices] if values is not None else None


def score_reconstruction(
    name: str,
    recon: torch.Tensor,
    originals: torch.Tensor,
    idx: np.ndarray,
    pairs_faces: list | None,
    identities: list | None,
    detector: FaceDetector | None,
    originals_u8: np.ndarray,
) -> dict[str, Any]:
    """One report row: ``recon`` (n, 3, H, W) against ``originals[idx]`` (SSIM, PSNR) and, where
    a detector or face boxes are given, face detection and re-identification."""
    ori = originals[idx]
    row: dict[str, Any] = {
        "name": name,
        "n": len(idx),
        "ssim": mean_std(ssim(recon, ori)),
        "psnr": mean_std(psnr(recon, ori)),
    }
    rec_u8 = to_uint8(recon)
    faces = [pairs_faces[i] for i in idx] if pairs_faces is not None else None
    ids = [identities[i] for i in idx] if identities is not None else None
    if detector is not None:
        row["face_detection"] = face_detection_rate(detector.detect_all(rec_u8), faces)
    if faces is not None:
        row["reid"] = face_reidentification(rec_u8, originals_u8[idx], faces, ids)
    return row


def budget_status(info: dict[str, Any]) -> dict[str, Any]:
    """Whether a learned attacker's figure is its saturated strength or a lower bound:
    ``saturated`` (True / False / None: one budget, saturation not tested), ``lower_bound``
    (True unless saturated) and ``budget`` (why, in words)."""
    curve = info.get("saturation")
    if curve is None:
        return {
            "saturated": None,
            "lower_bound": True,
            "budget": f"one budget ({info['train_pairs']} train pairs, {info['epochs']} "
            "epochs): saturation not tested (--saturate)",
        }
    saturated = curve["status"] == "saturated"
    return {"saturated": saturated, "lower_bound": not saturated, "budget": curve["reason"]}


def report_rows(run: AttackRun, detector: FaceDetector | None) -> list[dict[str, Any]]:
    """One report row per reconstruction (and the originals' ceiling row when faces count)."""
    pairs = run.pairs
    test_idx = np.arange(len(pairs.test))
    test_faces = subset_list(pairs.faces, pairs.test)
    test_ids = subset_list(pairs.identities, pairs.test)
    ori_u8 = pairs.originals[pairs.test]
    rows = []
    if detector is not None or test_faces is not None:
        orig_row: dict[str, Any] = {
            "name": "original",
            "n": len(test_idx),
            "ssim": mean_std([1.0] * len(test_idx)),
            "psnr": mean_std([]),
        }
        if detector is not None:
            orig_row["face_detection"] = face_detection_rate(
                detector.detect_all(ori_u8), test_faces
            )
        if test_faces is not None:
            orig_row["reid"] = face_reidentification(ori_u8, ori_u8, test_faces, test_ids)
        run.labels["original"] = "original scenes (detector / re-ID ceiling)"
        rows.append(orig_row)
    for key, rec in run.recons.items():
        idx = run.subsets.get(key, test_idx)
        rows.append(
            score_reconstruction(
                key,
                rec.cpu().float(),
                run.ori_test.cpu(),
                idx,
                test_faces,
                test_ids,
                detector,
                ori_u8,
            )
        )
    # per-image SSIM of the capture, once: each attack is compared on its own images
    captured_ssim = ssim(run.recons["captured"].cpu().float(), run.ori_test.cpu())
    for row in rows:
        row["label"] = run.labels.get(row["name"], row["name"])
        if row["name"] in run.learned:
            info = run.learned[row["name"]]
            row["converged"] = info["converged"]
            row.update(budget_status(info))
        if row["name"] not in ("original", "captured"):
            # an attack that ends below the capture on its own images recovers nothing: the
            # reports say so instead of presenting it as a privacy result
            idx = run.subsets.get(row["name"], test_idx)
            identity = float(captured_ssim[idx].mean())
            row["identity_ssim"] = identity
            row["beats_identity"] = row["ssim"]["mean"] > identity
    return rows

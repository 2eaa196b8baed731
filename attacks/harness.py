"""Attack harness: simulate captures, run every attack, measure privacy, write the report.

:func:`run_attacks` is the Python API (the ``evaluate.py attack`` subcommand and the demo report
call it). It writes into ``out_dir``::

    pairs/                      simulated (capture, original) PNG pairs, attacker train/test
    deblurgan/, unet/, wiener_unet/
                                Lightning logs and checkpoints of the learned attackers
    strength/<attacker>_<n>/    the strength curve's attackers (``strength_curve``)
    attack_report.md            the table (SSIM / PSNR / face detection / re-ID) and notes
    attack_results.json         everything in the table plus K sweeps, timings, settings
    attack_grid.png             original / capture / each reconstruction for a few test images
    attack_strength.png         strength curve: test SSIM against training pairs, and the
                                validation SSIM per epoch (``strength_curve`` only)

Learned attackers (:data:`LEARNED`, a registry of name → label and constructor options) hold
out a validation part of attacker-train, keep their best-validation-SSIM weights and are
flagged "did not converge" when that best does not beat the identity on validation.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import nonblind as NB
from .data import ImageSet, PairSet, load_image_set, simulate_pairs, to_tensor, to_uint8
from .metrics import FaceDetector, face_detection_rate, face_reidentification, mean_std, psnr, ssim

__all__ = ["ATTACKS", "LEARNED", "PUBLISHED", "expand_attacks", "parse_strength_curve",
           "run_attacks", "write_report"]

log = logging.getLogger(__name__)

ATTACKS: tuple[str, ...] = ("wiener", "wiener_exact", "unsupervised_wiener", "richardson_lucy",
                            "deblurgan", "unet", "wiener_unet")
# Learned attackers: name → report label (``attacks.learned.ATTACKERS`` has the modules).
LEARNED: dict[str, str] = {
    "deblurgan": "DeblurGAN-v2 style (FPN-MobileNetV2, RaGAN-LS)",
    "unet": "U-Net",
    "wiener_unet": "Wiener + U-Net refiner (known PSF)",
}
# Published privacy-lens figures (Arguello et al.), SSIM against the originals.
PUBLISHED = {"captured": "0.48 ± 0.12", "wiener": "0.38 ± 0.10", "deblurgan": "0.40 ± 0.11"}


def expand_attacks(attacks: str | Sequence[str]) -> list[str]:
    """"all", one name, a comma-separated string or a list → ordered list of attack names."""
    names = attacks.split(",") if isinstance(attacks, str) else list(attacks)
    names = [n.strip() for n in names if n.strip()]
    if "all" in names:
        return list(ATTACKS)
    unknown = [n for n in names if n not in ATTACKS]
    if unknown or not names:
        raise ValueError(f"unknown attack(s) {unknown or names}: choose from {list(ATTACKS)} "
                         "or 'all' (comma-separate several)")
    return [a for a in ATTACKS if a in names]


def parse_strength_curve(spec: str | Sequence[int | str] | None) -> list[int | str]:
    """"100,300,all" (or a list) → [100, 300, "all"]: attacker-train pair counts, increasing."""
    if spec is None or spec == "" or spec == []:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[int | str] = []
    for item in items:
        text = str(item).strip().lower()
        if text == "all":
            out.append("all")
            continue
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 2:
            raise ValueError(f"strength curve point {item!r} is not a pair count >= 2 or 'all' "
                             "(e.g. --strength-curve 100,300,1000,all)")
        out.append(value)
    return out


def _as_pairs(
    camera: torch.nn.Module, data: Any, out_dir: Path, image_size: int, max_images: int | None,
    seed: int, train_fraction: float, device: str,
) -> PairSet:
    if isinstance(data, PairSet):
        return data
    if isinstance(data, str | Path):
        data = load_image_set(data, image_size=image_size, max_images=max_images, seed=seed)
    elif isinstance(data, torch.Tensor):
        data = ImageSet(to_uint8(data), [f"{i:06d}" for i in range(len(data))], source="tensor")
    elif isinstance(data, np.ndarray):
        data = ImageSet(data, [f"{i:06d}" for i in range(len(data))], source="array")
    if not isinstance(data, ImageSet):
        raise TypeError(f"images_or_dataset must be an ImageSet, PairSet, path, 'embedded', "
                        f"(N, H, W, 3) uint8 array or (N, 3, H, W) tensor; got {type(data)}")
    return simulate_pairs(camera, data, out_dir, seed=seed, train_fraction=train_fraction,
                          device=device)


def _evaluate(
    name: str, recon: torch.Tensor, originals: torch.Tensor, idx: np.ndarray,
    pairs_faces: list | None, identities: list | None, detector: FaceDetector | None,
    originals_u8: np.ndarray,
) -> dict[str, Any]:
    ori = originals[idx]
    row: dict[str, Any] = {"name": name, "n": len(idx),
                           "ssim": mean_std(ssim(recon, ori)), "psnr": mean_std(psnr(recon, ori))}
    rec_u8 = to_uint8(recon)
    faces = [pairs_faces[i] for i in idx] if pairs_faces is not None else None
    ids = [identities[i] for i in idx] if identities is not None else None
    if detector is not None:
        row["face_detection"] = face_detection_rate(detector.detect_all(rec_u8), faces)
    if faces is not None:
        row["reid"] = face_reidentification(rec_u8, originals_u8[idx], faces, ids)
    return row


def run_attacks(
    camera: torch.nn.Module,
    images_or_dataset: Any,
    out_dir: str | Path,
    attacks: str | Sequence[str] = "all",
    *,
    image_size: int = 128,
    max_images: int | None = None,
    seed: int = 0,
    epochs: int = 3,
    batch_size: int = 8,
    device: str = "cpu",
    train_fraction: float = 2 / 3,
    k_metric: str = "ssim",
    max_k_images: int = 32,
    max_reference_images: int = 24,
    backbone_weights: str | None = "IMAGENET1K_V1",
    vgg_weights: str | None = None,
    deblurgan_kwargs: dict[str, Any] | None = None,
    unet_kwargs: dict[str, Any] | None = None,
    wiener_unet_kwargs: dict[str, Any] | None = None,
    strength_curve: str | Sequence[int | str] | None = None,
    strength_attacker: str | None = None,
    detect_faces: bool = True,
    face_detector: FaceDetector | None = None,
    figure_rows: int = 6,
    title: str | None = None,
) -> dict[str, Any]:
    """Attack ``camera`` on a set of scenes and measure how much privacy survives.

    Args:
        camera: an ``optics.Camera`` (preset or ``load_camera(ckpt)``); used in eval mode.
        images_or_dataset: "embedded", a folder / COCO root, an ImageSet, a PairSet (already
            simulated pairs), (N, H, W, 3) uint8 or (N, 3, H, W) float images.
        out_dir: output folder (see module docstring).
        attacks: "all" or names from :data:`ATTACKS`.
        image_size: square size images are resized to (must be >= the camera's PSF size).
        epochs, batch_size: learned attackers' training.
        device: "cpu" or "cuda" (Wiener sweeps and learned attackers run there).
        k_metric: what the attacker's K maximises on the attacker-train pairs ("ssim"/"psnr").
        max_k_images: attacker-train images used for the K sweep.
        max_reference_images: test images the (slow, numpy) scikit-image attacks run on.
        backbone_weights, vgg_weights: pretrained weights for DeblurGAN-v2's MobileNetV2 and
            the VGG19 perceptual loss (enum name or local file; random / L1+SSIM fallback).
        deblurgan_kwargs, unet_kwargs, wiener_unet_kwargs: constructor options of the learned
            attackers (``attacks.learned``).
        strength_curve: attacker-train pair counts ("100,300,all") to retrain
            ``strength_attacker`` on (nested subsets, same epochs); off by default.
        strength_attacker: the learned attacker of the curve (default: the first learned
            attack in ``attacks``, else "unet").

    Returns:
        dict with "rows" (one per method: ssim, psnr, face_detection, reid; learned rows also
        "converged"), "settings", "k" (sweeps), "learned" (training info, validation SSIM),
        "strength" (curve points), "notes", "files".
    """
    start = time.perf_counter()
    names = expand_attacks(attacks)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    camera = camera.eval()
    pairs = _as_pairs(camera, images_or_dataset, out, image_size, max_images, seed,
                      train_fraction, device)
    notes: list[str] = []
    timings: dict[str, float] = {"simulate": time.perf_counter() - start}
    response = NB.Response.from_camera(camera) if hasattr(camera, "sensor") \
        else NB.Response.identity()
    psf = pairs.psf
    if psf is None:
        psf = torch.ones(1, 1, 1)
        notes.append("The camera has no lens PSF (ideal / low-res preset): the non-blind attacks "
                     "use a delta PSF, i.e. they only undo the response and noise.")
    psf = psf.to(device)
    check_size = tuple(pairs.captures.shape[1:3])
    if psf.shape[-1] > min(check_size):
        from .functional import check_psf

        check_psf(psf, (1, 3, *check_size))

    cap_train = to_tensor(pairs.captures[pairs.train], device)
    ori_train = to_tensor(pairs.originals[pairs.train], device)
    cap_test = to_tensor(pairs.captures[pairs.test], device)
    ori_test = to_tensor(pairs.originals[pairs.test], device)
    test_idx = np.arange(len(pairs.test))
    test_faces = [pairs.faces[i] for i in pairs.test] if pairs.faces is not None else None
    test_ids = [pairs.identities[i] for i in pairs.test] if pairs.identities is not None else None
    ori_u8 = pairs.originals[pairs.test]
    detector = (face_detector or FaceDetector()) if detect_faces else None

    recons: dict[str, torch.Tensor] = {"captured": cap_test}
    subsets: dict[str, np.ndarray] = {}
    labels: dict[str, str] = {"captured": "captured (no attack)"}
    k_info: dict[str, Any] = {}
    learned: dict[str, Any] = {}
    rng = np.random.default_rng(seed)
    k_sel = np.sort(rng.permutation(len(cap_train))[:max_k_images])

    if "wiener" in names:
        t = time.perf_counter()
        for reg in ("constant", "laplacian"):
            k_info[f"wiener_{reg}"] = NB.choose_k(
                cap_train[k_sel], ori_train[k_sel], psf, response, regulariser=reg,
                metric=k_metric)
            key = "wiener" if reg == "constant" else "wiener_laplacian"
            recons[key] = NB.wiener_attack(cap_test, psf, k_info[f"wiener_{reg}"]["k"], response,
                                           reg).cpu()
            labels[key] = (f"Wiener, {'constant' if reg == 'constant' else 'Laplacian'} K = "
                           f"{k_info[f'wiener_{reg}']['k']:.2g} (attacker's best on train)")
        recons["wiener_oracle"], k_img = NB.wiener_oracle_attack(
            cap_test, ori_test, psf, response, metric=k_metric)
        recons["wiener_oracle"] = recons["wiener_oracle"].cpu()
        k_info["wiener_oracle_k"] = k_img.tolist()
        labels["wiener_oracle"] = "Wiener, constant, per-image oracle K (upper bound)"
        timings["wiener"] = time.perf_counter() - t
    if "wiener_exact" in names:
        t = time.perf_counter()
        sel = k_sel[:4]
        k_info["wiener_exact"] = NB.choose_k_exact(cap_train[sel], ori_train[sel], psf, response,
                                                   metric=k_metric)
        recons["wiener_exact"] = NB.exact_model_attack(cap_test, psf, k_info["wiener_exact"]["k"],
                                                       response).cpu()
        labels["wiener_exact"] = (f"Wiener/Tikhonov on the exact linear model (CG), K = "
                                  f"{k_info['wiener_exact']['k']:.2g}")
        timings["wiener_exact"] = time.perf_counter() - t
    n_ref = min(max_reference_images, len(test_idx))
    ref_idx = test_idx[:n_ref]
    psf_cpu = psf.cpu()
    if "unsupervised_wiener" in names:
        t = time.perf_counter()
        recons["unsupervised_wiener"] = NB.unsupervised_wiener_attack(
            cap_test[ref_idx].cpu(), psf_cpu, response, seed=seed)
        subsets["unsupervised_wiener"] = ref_idx
        labels["unsupervised_wiener"] = "skimage unsupervised_wiener"
        timings["unsupervised_wiener"] = time.perf_counter() - t
    if "richardson_lucy" in names:
        t = time.perf_counter()
        recons["richardson_lucy"] = NB.richardson_lucy_attack(cap_test[ref_idx].cpu(), psf_cpu,
                                                              response)
        subsets["richardson_lucy"] = ref_idx
        labels["richardson_lucy"] = "skimage richardson_lucy (30 iterations)"
        timings["richardson_lucy"] = time.perf_counter() - t
    accelerator = "gpu" if str(device).startswith("cuda") else "cpu"
    options = {"deblurgan": {"backbone_weights": backbone_weights, **(deblurgan_kwargs or {})},
               "unet": dict(unet_kwargs or {}), "wiener_unet": dict(wiener_unet_kwargs or {})}
    curve = parse_strength_curve(strength_curve)
    curve_kind = strength_attacker or next((n for n in names if n in LEARNED), "unet")
    if curve and curve_kind not in LEARNED:
        raise ValueError(f"strength_attacker {curve_kind!r} is not a learned attacker: choose "
                         f"one of {list(LEARNED)}")
    wanted = [k for k in LEARNED if k in names or (curve and k == curve_kind)]
    if "wiener_unet" in wanted:
        opts = options["wiener_unet"]
        if "k" not in opts:  # start from the attacker's own best Wiener K
            if "wiener_constant" not in k_info:
                k_info["wiener_constant"] = NB.choose_k(cap_train[k_sel], ori_train[k_sel], psf,
                                                        response, metric=k_metric)
            opts["k"] = max(k_info["wiener_constant"]["k"], 1e-6)
        opts.setdefault("psf", psf.cpu())
        opts.update({key: value for key, value in _response_options(camera).items()
                     if key not in opts})
    from .learned import reconstruct, train_attacker

    def fit(kind: str, sel: np.ndarray, folder: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
        extra = dict(options[kind])
        return train_attacker(kind, pairs.captures[pairs.train[sel]],
                              pairs.originals[pairs.train[sel]], folder, epochs=epochs,
                              batch_size=batch_size, seed=seed, accelerator=accelerator,
                              vgg_weights=extra.pop("vgg_weights", vgg_weights), **extra)

    all_train = np.arange(len(pairs.train))
    for kind in wanted:
        if kind not in names:
            continue
        t = time.perf_counter()
        model, info = fit(kind, all_train, out / kind)
        recons[kind] = reconstruct(model.generator, cap_test, batch_size, device)
        learned[kind] = info
        labels[kind] = f"{LEARNED[kind]}, {info['epochs']} epochs (best {info['best_epoch']})"
        if info["converged"] is False:
            labels[kind] += (f" — did not converge (validation SSIM {info['val_best_ssim']:.3f} "
                             f"≤ identity {info['val_identity_ssim']:.3f})")
            notes.append(f"{kind} did not converge: its best validation SSIM "
                         f"({info['val_best_ssim']:.3f}) is not above the identity's "
                         f"({info['val_identity_ssim']:.3f}); its row is not an attack result.")
        timings[kind] = time.perf_counter() - t
    strength: list[dict[str, Any]] = []
    if curve:
        t = time.perf_counter()
        strength = _strength_curve(curve, curve_kind, fit, learned, recons, cap_test, ori_test,
                                   len(pairs.train), out / "strength", batch_size, device, seed)
        timings["strength_curve"] = time.perf_counter() - t

    t = time.perf_counter()
    rows = []
    if detector is not None or test_faces is not None:
        orig_row: dict[str, Any] = {"name": "original", "n": len(test_idx),
                                    "ssim": mean_std([1.0] * len(test_idx)),
                                    "psnr": mean_std([])}
        if detector is not None:
            orig_row["face_detection"] = face_detection_rate(detector.detect_all(ori_u8),
                                                             test_faces)
        if test_faces is not None:
            orig_row["reid"] = face_reidentification(ori_u8, ori_u8, test_faces, test_ids)
        labels["original"] = "original scenes (detector / re-ID ceiling)"
        rows.append(orig_row)
    for key, rec in recons.items():
        idx = subsets.get(key, test_idx)
        rows.append(_evaluate(key, rec.cpu().float(), ori_test.cpu(), idx, test_faces, test_ids,
                              detector, ori_u8))
    for row in rows:
        row["label"] = labels.get(row["name"], row["name"])
        if row["name"] in learned:
            row["converged"] = learned[row["name"]]["converged"]
    timings["metrics"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start

    config = getattr(getattr(camera, "config", None), "to_dict", dict)()
    result = {
        "title": title or f"Attacks on the {config.get('preset', 'given')} camera",
        "rows": rows,
        "settings": {
            "camera": config, "psf_shape": list(pairs.psf.shape) if pairs.psf is not None else None,
            "source": pairs.meta.get("source", ""), "image_size": int(pairs.captures.shape[1]),
            "train_pairs": len(pairs.train), "test_pairs": len(pairs.test), "seed": seed,
            "attacks": names, "k_metric": k_metric, "epochs": epochs, "device": str(device),
            "reference_images": n_ref,
            "strength_curve": curve, "strength_attacker": curve_kind if curve else None,
        },
        "k": k_info, "learned": learned, "strength": strength, "notes": notes,
        "timings_s": timings,
        "published_privacy_lens_ssim": PUBLISHED,
    }
    figure = _figure(out / "attack_grid.png", ori_test.cpu(), recons, subsets, labels,
                     test_faces, figure_rows)
    strength_png = _strength_figure(out / "attack_strength.png", strength,
                                    rows[0 if rows[0]["name"] == "captured" else 1])
    result["files"] = write_report(result, out)
    result["files"]["figure"] = str(figure) if figure else None
    result["files"]["strength_figure"] = str(strength_png) if strength_png else None
    return result


def _response_options(camera: torch.nn.Module) -> dict[str, Any]:
    """The camera response as WienerUNet options (response, gamma, linearize)."""
    sensor = getattr(camera, "sensor", None)
    if sensor is None:
        return {"response": "linear", "linearize": False}
    return {"response": sensor.response, "gamma": sensor.gamma,
            "linearize": bool(getattr(camera.config, "linearize_input", True))}


def _strength_curve(
    curve: list[int | str], kind: str, fit: Any, learned: dict[str, Any],
    recons: dict[str, torch.Tensor], cap_test: torch.Tensor, ori_test: torch.Tensor,
    n_train: int, folder: Path, batch_size: int, device: str, seed: int,
) -> list[dict[str, Any]]:
    """Retrain ``kind`` on nested subsets of attacker-train; one row per pair count."""
    from .learned import reconstruct

    counts = sorted({n_train if c == "all" else min(int(c), n_train) for c in curve})
    order = np.random.default_rng(seed + 1).permutation(n_train)
    points = []
    for n in counts:
        if n == n_train and kind in learned:  # the main run is this point: same data and seed
            info, rec = learned[kind], recons[kind]
        else:
            model, info = fit(kind, np.sort(order[:n]), folder / f"{kind}_{n}")
            rec = reconstruct(model.generator, cap_test, batch_size, device)
        ori = ori_test.cpu()
        points.append({
            "attacker": kind, "pairs": n, "train_pairs": info["train_pairs"],
            "val_pairs": info["val_pairs"], "epochs": info["epochs"],
            "best_epoch": info["best_epoch"], "val_history": info["val_history"],
            "val_identity_ssim": info["val_identity_ssim"], "val_best_ssim": info["val_best_ssim"],
            "converged": info["converged"], "ssim": mean_std(ssim(rec.float(), ori)),
            "psnr": mean_std(psnr(rec.float(), ori)), "seconds": info["seconds"],
        })
    return points


def _strength_figure(path: Path, points: list[dict[str, Any]], captured: dict[str, Any]
                     ) -> Path | None:
    """Two panels: test SSIM against attacker-train pairs (mean ± standard error over the test
    images; the identity as a line), and each point's validation SSIM gain over the identity
    per epoch (the validation parts differ between points; the gain is comparable)."""
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    x = [p["pairs"] for p in points]
    sem = [p["ssim"]["std"] / max(p["ssim"]["n"], 1) ** 0.5 for p in points]
    a.errorbar(x, [p["ssim"]["mean"] for p in points], yerr=sem, marker="o", capsize=3,
               label=points[0]["attacker"])
    a.axhline(captured["ssim"]["mean"], color="grey", ls="--", label="captured (no attack)")
    a.set_xscale("log")
    a.set_xticks(x, [str(v) for v in x])
    a.minorticks_off()
    a.set_xlabel("attacker-train pairs")
    a.set_ylabel("test SSIM (± s.e.)")
    a.legend(fontsize=8)
    for p in points:
        if p["val_history"] and p["val_identity_ssim"] is not None:
            gain = [v - p["val_identity_ssim"] for v in p["val_history"]]
            b.plot(range(1, len(gain) + 1), gain, marker=".", label=f"{p['pairs']} pairs")
    b.axhline(0.0, color="grey", ls="--")
    b.set_xlabel("epoch")
    b.set_ylabel("validation SSIM − identity")
    if b.lines[:-1]:
        b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(stat: dict[str, float] | None, digits: int = 3) -> str:
    if not stat or stat.get("n", 0) == 0 or math.isnan(stat["mean"]):
        return "–"
    if math.isinf(stat["mean"]):
        return "∞"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _converged(value: bool | None) -> str:
    return "not validated" if value is None else ("yes" if value else "**did not converge**")


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.0f} %"


def write_report(result: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """Write ``attack_report.md`` and ``attack_results.json``; returns their paths."""
    out = Path(out_dir)
    s = result["settings"]
    lines = [f"# {result['title']}", ""]
    lines.append(
        f"Scenes: {s['source']} at {s['image_size']}² px; {s['train_pairs']} attacker-train / "
        f"{s['test_pairs']} attacker-test pairs (seed {s['seed']}); PSF {s['psf_shape']}; "
        f"attacker K chosen by {s['k_metric'].upper()} on attacker-train pairs.")
    lines += ["", "| method | n | SSIM | PSNR (dB) | faces detected | false-positive imgs | "
              "re-ID top-1 (chance) |", "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        fd = row.get("face_detection", {})
        reid = row.get("reid", {})
        reid_s = "–" if not reid else f"{_pct(reid['top1'])} ({_pct(reid['chance'])})"
        lines.append(
            f"| {row['label']} | {row['n']} | {_fmt(row['ssim'])} | {_fmt(row['psnr'], 2)} | "
            f"{_pct(fd.get('rate'))} | {_pct(fd.get('false_positive_rate'))} | {reid_s} |")
    lines += ["", "Published privacy lens (SSIM vs originals, COCO 256²): captured "
              f"{PUBLISHED['captured']}, Wiener {PUBLISHED['wiener']}, DeblurGAN-v2 "
              f"{PUBLISHED['deblurgan']}.", ""]
    lines += ["Metrics: SSIM with an 11-tap Gaussian window (σ 1.5), data range 1, mean over RGB "
              "(equal to scikit-image's structural_similarity with gaussian_weights); PSNR over "
              "all pixels; face detection with scikit-image's LBP frontal-face cascade (a face "
              "counts when a detection overlaps its box with IoU ≥ 0.3); re-ID: HOG descriptor "
              "of the face crop at its known box, nearest original face in the gallery of "
              "all test faces (chance = 1 / gallery size per identity).", ""]
    learned = result.get("learned", {})
    if learned:
        lines += ["Learned attackers: trained on attacker-train minus a held-out validation "
                  "part, best-validation-SSIM epoch kept; an attacker whose best does not beat "
                  "the identity (the captures as they are) on validation did not converge and is "
                  "no attack result.", "",
                  "| attacker | train / val pairs | epochs (best) | val SSIM identity | "
                  "val SSIM at start | val SSIM best | val SSIM last epoch | converged |",
                  "|---|---|---|---|---|---|---|---|"]
        for kind, info in learned.items():
            lines.append(
                f"| {kind} | {info['train_pairs']} / {info['val_pairs']} | {info['epochs']} "
                f"({info['best_epoch']}) | {_num(info.get('val_identity_ssim'))} | "
                f"{_num(info.get('val_start_ssim'))} | {_num(info.get('val_best_ssim'))} | "
                f"{_num(info.get('val_last_ssim'))} | {_converged(info.get('converged'))} |")
        lines.append("")
    for kind, info in learned.items():
        lines.append(f"- {kind}: {info['train_pairs']} pairs, {info['epochs']} epochs "
                     f"({info['steps']} steps, {info['seconds']:.0f} s); content loss "
                     f"{info['content_loss']}; backbone {info['backbone']}"
                     + (f"; learned Wiener K {info['k_final']:.3g}" if "k_final" in info else "")
                     + f"; checkpoint `{info['checkpoint']}`.")
    strength = result.get("strength") or []
    if strength:
        lines += ["", f"### Attacker strength curve ({strength[0]['attacker']})", "",
                  "The same attacker retrained on nested subsets of attacker-train (same "
                  "epochs); if the last points still rise, the attacker has not saturated and "
                  "more pairs would recover more. ![strength](attack_strength.png)", "",
                  "| pairs (train / val) | epochs (best) | val SSIM identity | val SSIM best | "
                  "test SSIM | test PSNR (dB) | converged |", "|---|---|---|---|---|---|---|"]
        for p in strength:
            lines.append(
                f"| {p['pairs']} ({p['train_pairs']} / {p['val_pairs']}) | {p['epochs']} "
                f"({p['best_epoch']}) | {_num(p['val_identity_ssim'])} | "
                f"{_num(p['val_best_ssim'])} | {_fmt(p['ssim'])} | {_fmt(p['psnr'], 2)} | "
                f"{_converged(p['converged'])} |")
        lines.append("")
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    t = result.get("timings_s", {})
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()), ""]
    md = out / "attack_report.md"
    md.write_text("\n".join(lines))
    js = out / "attack_results.json"
    js.write_text(json.dumps(result, indent=1, default=str))
    return {"report": str(md), "json": str(js)}


def _figure(
    path: Path, originals: torch.Tensor, recons: dict[str, torch.Tensor],
    subsets: dict[str, np.ndarray], labels: dict[str, str], faces: list | None, rows: int,
) -> Path | None:
    """Grid: one row per test image (faces first), columns original / capture / attacks."""
    if rows < 1:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(originals)
    common = set(range(n))
    for idx in subsets.values():
        common &= {int(i) for i in idx}
    order = sorted(common, key=lambda i: (not (faces and faces[i]), i))[:rows]
    if not order:
        order = list(range(min(rows, n)))
    cols = ["original", *recons.keys()]
    fig, axes = plt.subplots(len(order), len(cols), figsize=(1.6 * len(cols), 1.6 * len(order)),
                             squeeze=False)
    for r, i in enumerate(order):
        for c, key in enumerate(cols):
            ax = axes[r][c]
            ax.axis("off")
            if key == "original":
                img = originals[i]
            else:
                idx = subsets.get(key)
                if idx is not None and i not in set(idx.tolist()):
                    continue
                pos = i if idx is None else int(np.flatnonzero(idx == i)[0])
                img = recons[key][pos]
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            if r == 0:
                ax.set_title(key.replace("_", "\n"), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""Attack harness: simulate captures, run every attack, measure privacy, write the report.

:func:`run_attacks` is the Python API (the ``evaluate.py attack`` subcommand and the demo report
call it). It writes into ``out_dir``::

    pairs/                      simulated (capture, original) PNG pairs, attacker train/test
    deblurgan/, unet/, wiener_unet/
                                Lightning logs and checkpoints of the learned attackers (one
                                folder per name of ``attacks.attackers.ATTACKERS``)
    strength/<attacker>_<n>/    the strength curve's attackers (``strength_curve``)
    attack_report.md            the table (SSIM / PSNR / face detection / re-ID) and notes
    attack_results.json         everything in the table plus K sweeps, timings, settings
    attack_grid.png             original / capture / each reconstruction for a few test images
    attack_strength.png         strength curve: test SSIM against training pairs, and the
                                validation SSIM per epoch (``strength_curve`` only)

The attacks themselves are named functions of ``attacks.registry.attack_functions``; the
learned attackers (``attacks.attackers.ATTACKERS``) hold out a validation part of
attacker-train, keep their best-validation-SSIM weights and are flagged "did not converge" when
that best does not beat the identity on validation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optics.lenses import has_surface

from . import nonblind as NB
from .attackers import ATTACKERS
from .metrics import FaceDetector
from .pairs import PairSet, capture_images, simulate_pairs, to_tensor, to_uint8
from .published import published_ssim_text
from .registry import AttackRun, attack_functions, attack_names, learned_options
from .report import grid_figure, strength_figure, write_report
from .saturation import EmbeddedPool, FixedPool, SaturationConfig, saturation_attack
from .scenes import ImageSet, load_image_set, make_embedded_set
from .scoring import report_rows, subset_list
from .strength import parse_strength_curve, run_strength_curve

__all__ = [
    "ATTACKS",  # noqa: F822 (module __getattr__: read from the registry when asked for)
    "PUBLISHED",
    "expand_attacks",
    "parse_strength_curve",
    "run_attacks",
    "write_report",
]


# Published privacy-lens figures (Arguello et al.), SSIM against the originals.
PUBLISHED = published_ssim_text()


def expand_attacks(attacks: str | Sequence[str]) -> list[str]:
    """ "all", one name, a comma-separated string or a list → ordered list of attack names."""
    names = attacks.split(",") if isinstance(attacks, str) else list(attacks)
    names = [n.strip() for n in names if n.strip()]
    every = attack_names()
    if "all" in names:
        return list(every)
    unknown = [n for n in names if n not in every]
    if unknown or not names:
        raise ValueError(
            f"unknown attack(s) {unknown or names}: choose from {list(every)} "
            "or 'all' (comma-separate several)"
        )
    return [a for a in every if a in names]


def __getattr__(name: str) -> Any:
    """``ATTACKS``: every ``--attack`` name in report order (``attacks.registry.attack_names``,
    read from the registry when asked for)."""
    if name == "ATTACKS":
        return attack_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _as_pairs(
    camera: torch.nn.Module,
    data: Any,
    out_dir: Path,
    image_size: int,
    max_images: int | None,
    seed: int,
    train_fraction: float,
    device: str,
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
        raise TypeError(
            f"images_or_dataset must be an ImageSet, PairSet, path, 'embedded', "
            f"(N, H, W, 3) uint8 array or (N, 3, H, W) tensor; got {type(data)}"
        )
    return simulate_pairs(
        camera, data, out_dir, seed=seed, train_fraction=train_fraction, device=device
    )


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
    attacker_options: Mapping[str, Mapping[str, Any]] | None = None,
    strength_curve: str | Sequence[int | str] | None = None,
    strength_attacker: str | None = None,
    detect_faces: bool = True,
    face_detector: FaceDetector | None = None,
    figure_rows: int = 6,
    title: str | None = None,
    in_loop: tuple[torch.nn.Module, dict[str, Any]] | None = None,
    attacker_psf: tuple[torch.Tensor, str] | None = None,
    saturation: SaturationConfig | None = None,
) -> dict[str, Any]:
    """Attack ``camera`` on a set of scenes and measure how much privacy survives.

    (Long only by its keyword options and their documentation: each attack is a function of
    ``attacks.registry``, the report is ``attacks.report``.)

    Args:
        camera: an ``optics.Camera`` (preset or ``load_camera(ckpt)``); used in eval mode.
        images_or_dataset: "embedded", a folder / COCO root, an ImageSet, a PairSet (already
            simulated pairs), (N, H, W, 3) uint8 or (N, 3, H, W) float images.
        out_dir: output folder (see module docstring).
        attacks: "all" or names from :data:`ATTACKS` (``attacks.registry.attack_names``).
        image_size: square size images are resized to (must be >= the camera's PSF size).
        epochs, batch_size: learned attackers' training.
        device: "cpu" or "cuda" (Wiener sweeps and learned attackers run there).
        k_metric: what the attacker's K maximises on the attacker-train pairs ("ssim"/"psnr").
        max_k_images: attacker-train images used for the K sweep.
        max_reference_images: test images the (slow, numpy) scikit-image attacks run on.
        backbone_weights, vgg_weights: pretrained weights for DeblurGAN-v2's MobileNetV2 (the
            option ``AttackerSpec.weights_option`` of an attacker) and the VGG19 perceptual
            loss (enum name or local file; random / L1+SSIM fallback).
        attacker_options: learned attacker name → its constructor options (``attacks.learned``;
            names of ``attacks.attackers.ATTACKERS``), e.g. ``{"unet": {"base_channels": 16}}``.
        strength_curve: attacker-train pair counts ("100,300,all") to retrain
            ``strength_attacker`` on (nested subsets, same epochs); off by default.
        strength_attacker: the learned attacker of the curve (default: the first learned
            attack in ``attacks``, else "unet").
        in_loop: the in-loop attacker a min–max lens was trained against
            (``attacks.adversary.load_in_loop_attacker``): judged as one more row, and the
            report says that every learned attack is a fresh one and whether it saw more
            pairs than the in-loop attacker did.
        attacker_psf: (PSF (C, K, K), its name) the non-blind attacks use instead of the
            camera's (a threat model where the attacker's PSF is not the lens's, e.g. the
            design PSF attacking the lens as made); the captures keep the camera's PSF.
        saturation: train every learned attacker to saturation (``attacks.saturation``:
            doubling attacker-train pairs, early stopping) instead of at one budget. With
            "embedded" scenes the attacker-test pairs are ``saturation.test_pairs`` scenes of
            the embedded test split and attacker-train pairs are generated as needed
            (``max_images`` and ``train_fraction`` are then unused); other scenes are split as
            usual and their attacker-train part is the pool. ``epochs`` is unused: the
            per-level cap is ``saturation.max_epochs``.

    Returns:
        dict with "rows" (one per method: ssim, psnr, face_detection, reid; learned rows also
        "converged"), "settings", "k" (sweeps), "learned" (training info, validation SSIM),
        "strength" (curve points), "notes", "files".
    """
    start = time.perf_counter()
    names = expand_attacks(attacks)
    options = _constructor_options(attacker_options, backbone_weights)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    camera = camera.eval()
    pool = None
    if saturation is not None and str(images_or_dataset) == "embedded":
        pool = EmbeddedPool(
            camera, out / "saturation" / "pool", image_size, seed, saturation.chunk_pairs, device
        )
        pairs = _saturation_pairs(camera, pool, saturation, image_size, seed, device)
    else:
        pairs = _as_pairs(
            camera, images_or_dataset, out, image_size, max_images, seed, train_fraction, device
        )
        if saturation is not None:
            pool = FixedPool(pairs)
    run = _attack_run(
        camera,
        pairs,
        out,
        seed=seed,
        k_metric=k_metric,
        device=device,
        epochs=epochs,
        batch_size=batch_size,
        vgg_weights=vgg_weights,
        max_k_images=max_k_images,
        max_reference_images=max_reference_images,
        options=options,
        attacker_psf=attacker_psf,
    )
    run.timings["simulate"] = time.perf_counter() - start
    curve = parse_strength_curve(strength_curve)
    curve_kind = strength_attacker or next((n for n in names if n in ATTACKERS), "unet")
    if curve and curve_kind not in ATTACKERS:
        raise ValueError(
            f"strength_attacker {curve_kind!r} is not a learned attacker: choose "
            f"one of {list(ATTACKERS)}"
        )
    for kind, spec in ATTACKERS.items():
        if spec.needs_psf and (kind in names or (curve and curve_kind == kind)):
            learned_options(run, camera, kind)
    functions = attack_functions()
    if saturation is not None:
        functions.update({k: saturation_attack(k, pool, saturation) for k in ATTACKERS})
    for name in names:
        functions[name](run)
    if pool is not None:
        run.timings["pair_pool"] = pool.seconds  # making attacker-train pairs (this run)
    if in_loop is not None:
        _in_loop_row(run, *in_loop, names)
    strength: list[dict[str, Any]] = []
    if curve:
        t = time.perf_counter()
        strength = run_strength_curve(run, curve, curve_kind, out / "strength")
        run.timings["strength_curve"] = time.perf_counter() - t

    t = time.perf_counter()
    detector = (face_detector or FaceDetector()) if detect_faces else None
    rows = report_rows(run, detector)
    run.timings["metrics"] = time.perf_counter() - t
    run.timings["total"] = time.perf_counter() - start

    config = getattr(getattr(camera, "config", None), "to_dict", dict)()
    phase_step = _check_sampling(camera, run.notes)
    result = {
        "title": title or f"Attacks on the {config.get('preset', 'given')} camera",
        "rows": rows,
        "settings": {
            "camera": config,
            "psf_shape": list(pairs.psf.shape) if pairs.psf is not None else None,
            "attacker_psf": attacker_psf[1] if attacker_psf is not None else None,
            "source": pairs.meta.get("source", ""),
            "image_size": int(pairs.captures.shape[1]),
            "train_pairs": len(pairs.train),
            "test_pairs": len(pairs.test),
            "seed": seed,
            "attacks": names,
            "k_metric": k_metric,
            "epochs": epochs,
            "device": str(device),
            "reference_images": len(run.ref_idx),
            "strength_curve": curve,
            "strength_attacker": curve_kind if curve else None,
            "max_phase_step_rad": phase_step,
            "saturation": saturation.to_dict() if saturation is not None else None,
        },
        "k": run.k_info,
        "learned": run.learned,
        "strength": strength,
        "notes": run.notes,
        "timings_s": run.timings,
        "published_privacy_lens_ssim": PUBLISHED,
    }
    test_faces = subset_list(pairs.faces, pairs.test)
    figure = grid_figure(
        out / "attack_grid.png",
        run.ori_test.cpu(),
        run.recons,
        run.subsets,
        run.labels,
        test_faces,
        figure_rows,
    )
    curves = [
        p for info in run.learned.values() for p in (info.get("saturation") or {}).get("points", [])
    ]
    strength_png = strength_figure(
        out / "attack_strength.png",
        strength or curves,
        rows[0 if rows[0]["name"] == "captured" else 1],
    )
    result["files"] = write_report(result, out)
    result["files"]["figure"] = str(figure) if figure else None
    result["files"]["strength_figure"] = str(strength_png) if strength_png else None
    return result


def _saturation_pairs(
    camera: torch.nn.Module,
    pool: EmbeddedPool,
    config: SaturationConfig,
    image_size: int,
    seed: int,
    device: str,
) -> PairSet:
    """The run's pairs in saturation mode on embedded scenes: the pool's first
    ``start_pairs`` as attacker-train (the non-blind attacks' K sweeps read them) and
    ``test_pairs`` scenes of the embedded test split, with faces, as attacker-test."""
    test = make_embedded_set(config.test_pairs, image_size, seed, split="test")
    test_captures, psf = capture_images(camera, test.images, seed, device=device)
    train_captures, train_originals = pool.get(config.start_pairs)
    n_train = len(train_captures)
    no_faces: list[list] = [[] for _ in range(n_train)]
    return PairSet(
        np.concatenate([train_captures, test_captures]),
        np.concatenate([train_originals, test.images]),
        np.arange(n_train),
        np.arange(n_train, n_train + len(test)),
        [f"train_{i:06d}" for i in range(n_train)] + list(test.names),
        no_faces + list(test.faces or []),
        [[] for _ in range(n_train)] + list(test.identities or []),
        psf,
        {"seed": seed, "source": f"{test.source}, train split generated on demand",
         "camera": getattr(getattr(camera, "config", None), "to_dict", dict)()},
    )  # fmt: skip


def _constructor_options(
    given: Mapping[str, Mapping[str, Any]] | None, backbone_weights: str | None
) -> dict[str, dict[str, Any]]:
    """Every learned attacker's constructor options: ``backbone_weights`` under its
    ``weights_option`` (if it has one), then the ones given for it."""
    given = dict(given or {})
    unknown = [name for name in given if name not in ATTACKERS]
    if unknown:
        raise ValueError(
            f"attacker_options for unknown learned attacker(s) {unknown}: choose from "
            f"{list(ATTACKERS)}"
        )
    options = {}
    for name, spec in ATTACKERS.items():
        weights = {spec.weights_option: backbone_weights} if spec.weights_option else {}
        options[name] = {**weights, **(given.get(name) or {})}
    return options


def _check_sampling(camera: torch.nn.Module, notes: list[str]) -> float | None:
    """The lens's largest phase step between pupil samples (None without a lens); over π the
    phase aliases, so the simulated PSF is not the lens's and the report says so. Training
    only warns when a lens drifts there (the optimiser can push it past π)."""
    lens = getattr(camera, "lens", None)
    if not has_surface(lens):  # no lens, or a measured PSF: no pupil to alias
        return None
    step = float(lens.check_phase_sampling())
    if step > math.pi:
        notes.append(
            f"**The lens aliases on its pupil grid** (largest phase step between neighbouring "
            f"samples {step:.2f} rad > π): its simulated PSF, and so every row here, is not "
            "what this lens would capture. Retrain it on a finer pupil grid (smaller "
            "pupil_pitch_um) or with a smaller lr_camera or privacy weight."
        )
    return step


def _attack_run(
    camera: torch.nn.Module,
    pairs: PairSet,
    out: Path,
    *,
    max_k_images: int,
    max_reference_images: int,
    attacker_psf: tuple[torch.Tensor, str] | None = None,
    **settings: Any,
) -> AttackRun:
    """The shared inputs of the attacks: tensors on the device, the PSF (a delta for cameras
    without a lens), the camera response, the K-sweep and reference image subsets."""
    device = settings["device"]
    notes: list[str] = []
    response = (
        NB.Response.from_camera(camera) if hasattr(camera, "sensor") else NB.Response.identity()
    )
    psf = pairs.psf
    if attacker_psf is not None:
        psf, name = attacker_psf
        if pairs.psf is not None and psf.shape[0] not in (1, pairs.psf.shape[0], 3):
            raise ValueError(
                f"attacker PSF {name} has {psf.shape[0]} channels; the camera's has "
                f"{pairs.psf.shape[0]}: give 1, {pairs.psf.shape[0]} or 3"
            )
        notes.append(
            f"The non-blind attacks use the PSF {name}, not the camera's: the attacker's model "
            "of the lens differs from the lens that made the captures."
        )
    elif psf is None:
        psf = torch.ones(1, 1, 1)
        notes.append(
            "The camera has no lens PSF (ideal / low-res preset): the non-blind attacks "
            "use a delta PSF, i.e. they only undo the response and noise."
        )
    psf = psf.to(device)
    check_size = tuple(pairs.captures.shape[1:3])
    if psf.shape[-1] > min(check_size):
        from .otf import check_psf

        check_psf(psf, (1, 3, *check_size))
    cap_train = to_tensor(pairs.captures[pairs.train], device)
    rng = np.random.default_rng(settings["seed"])
    n_test = len(pairs.test)
    run = AttackRun(
        pairs=pairs,
        psf=psf,
        response=response,
        cap_train=cap_train,
        ori_train=to_tensor(pairs.originals[pairs.train], device),
        cap_test=to_tensor(pairs.captures[pairs.test], device),
        ori_test=to_tensor(pairs.originals[pairs.test], device),
        k_sel=np.sort(rng.permutation(len(cap_train))[:max_k_images]),
        ref_idx=np.arange(n_test)[: min(max_reference_images, n_test)],
        out=out,
        notes=notes,
        **settings,
    )
    run.recons["captured"] = run.cap_test
    run.labels["captured"] = "captured (no attack)"
    return run


def _in_loop_row(
    run: AttackRun, net: torch.nn.Module, info: dict[str, Any], names: Sequence[str]
) -> None:
    """The checkpoint's own in-loop attacker as a row, and the note on which attackers judge
    the lens: fresh ones, trained after the lens was frozen (``names``: the attacks run)."""
    from .adversary import attack_with

    t = time.perf_counter()
    net = net.to(run.device)
    run.recons["in_loop"] = attack_with(net, run.cap_test, run.psf, run.batch_size).cpu()
    run.labels["in_loop"] = (
        f"in-loop {info['kind']} attacker from the checkpoint "
        f"({info['updates']} updates; not fresh)"
    )
    run.timings["in_loop"] = time.perf_counter() - t
    fresh = [n for n in names if n in run.learned]
    # pair presentations of each fresh attacker's kept run (its last level when saturating)
    shown = {n: run.learned[n]["train_pairs"] * run.learned[n]["epochs"] for n in fresh}
    presented = min(shown.values(), default=0)
    note = (
        f"This lens was trained against an in-loop {info['kind']} attacker (w_adversary "
        f"{info['w_adversary']:g}, {info['updates']} updates on {info['pairs_seen']} "
        f"(capture, original) pairs of a changing lens); its row is that attacker as saved. "
    )
    if fresh:
        note += (
            f"The learned attacks ({', '.join(fresh)}) are fresh: trained from scratch "
            "after the lens was frozen ("
            + ", ".join(f"{n} {v} pair presentations" for n, v in shown.items())
            + ")."
        )
        if presented <= info["pairs_seen"]:
            note += (
                " They saw no more pairs than the in-loop attacker: raise --max-images or "
                "--epochs before trusting them as the stronger attack."
            )
    else:
        note += "No fresh learned attacker was run: add --attack unet,wiener_unet."
    run.notes.append(note)

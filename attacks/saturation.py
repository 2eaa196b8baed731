"""The attacker-budget protocol that finds saturation (``evaluate.py attack --saturate``).

A learned attacker's test SSIM at one budget (pairs × epochs) is a lower bound on what an
adversary with more data gets. This protocol raises the budget until it stops paying: for each
learned attacker it trains on ``start_pairs`` attacker-train pairs until validation SSIM has not
improved for ``patience`` epochs (``max_epochs`` is a cap), scores the fixed attacker-test pairs,
doubles the pairs and repeats; it stops when the last doubling gained less than ``min_gain`` test
SSIM and that level's training ended on a plateau. An attacker that reaches ``cap_pairs``
without stopping is **not saturated**: its figure is a lower bound, and every report says so.

Pairs come from a :class:`PairPool`: the embedded generator makes any number of attacker-train
scenes (its ``train`` split, disjoint from the ``test`` split the attacker-test pairs come from),
captured in chunks that are written to disk as they are made, so an interrupted run regenerates
at most one chunk; a finite image set is a pool of its attacker-train pairs (the doubling stops
when it runs out, a lower bound). Each level's result is written (``level.json``) when it ends and
an interrupted level resumes from its ``last.ckpt``: rerunning the command (also with a higher
``cap_pairs``) continues where it stopped.

Layout under the attack run's ``--out``::

    saturation/pool/pool.json, psf.npy, train_0000.npz ...   the pair pool (embedded)
    saturation/<attacker>/<pairs>/                            one level: logs, checkpoints,
                                                               level.json
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .pairs import PairSet, capture_images
from .scenes import make_embedded_set

__all__ = [
    "EmbeddedPool",
    "FixedPool",
    "PairPool",
    "SaturationConfig",
    "doubling_levels",
    "run_doubling",
    "saturation_attack",
    "saturation_verdict",
]

log = logging.getLogger("attacks.saturation")


@dataclass(frozen=True)
class SaturationConfig:
    """The protocol's settings (command-line ``--saturate-*`` options, docs/evaluation.md).

    start_pairs / cap_pairs: attacker-train pairs of the first level and the most tried (each
    level doubles the last; the cap is tried last even if it is no doubling). min_gain: test
    SSIM a doubling must gain to go on. patience: epochs without a validation gain that end a
    level's training; max_epochs: its cap. test_pairs: the fixed attacker-test set (embedded
    scenes of the ``test`` split). chunk_pairs: pairs generated (and written) at a time.
    """

    start_pairs: int = 600
    cap_pairs: int = 19200
    min_gain: float = 0.01
    patience: int = 3
    max_epochs: int = 60
    test_pairs: int = 300
    chunk_pairs: int = 300

    def __post_init__(self) -> None:
        if self.start_pairs < 10:
            raise ValueError(
                f"--saturate-start {self.start_pairs}: at least 10 pairs (a tenth is held out "
                "for validation and early stopping)"
            )
        if self.cap_pairs < self.start_pairs:
            raise ValueError(
                f"--saturate-cap {self.cap_pairs} is below --saturate-start "
                f"{self.start_pairs}; give a cap of at least the start"
            )
        if not self.min_gain > 0:
            raise ValueError(f"--saturate-gain {self.min_gain}: a test SSIM gain > 0, e.g. 0.01")
        if self.patience < 1:
            raise ValueError(f"--patience {self.patience}: at least 1 epoch")
        if self.max_epochs <= self.patience:
            raise ValueError(
                f"--epochs {self.max_epochs} (the per-level cap) must exceed --patience "
                f"{self.patience}, or no level can end on a plateau"
            )
        if self.test_pairs < 2 or self.chunk_pairs < 1:
            raise ValueError(
                f"--saturate-test-pairs {self.test_pairs} / chunk {self.chunk_pairs}: "
                "at least 2 test pairs and 1 pair per chunk"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def doubling_levels(start: int, cap: int) -> list[int]:
    """start, 2·start, 4·start, … ≤ cap, and cap itself last (600, 19200 → 600 … 19200)."""
    levels = [start]
    while levels[-1] * 2 <= cap:
        levels.append(levels[-1] * 2)
    if levels[-1] != cap:
        levels.append(cap)
    return levels


def saturation_verdict(points: Sequence[dict[str, Any]], min_gain: float) -> tuple[bool, str]:
    """(saturated, why) of a doubling so far: saturated when the last level gained less than
    ``min_gain`` test SSIM over the one before and its training ended on a plateau (a level cut
    by the epoch cap could still gain from more epochs, so it decides nothing)."""
    if len(points) < 2:
        return False, "one level only: no doubling measured"
    last, before = points[-1], points[-2]
    gain = last["ssim"]["mean"] - before["ssim"]["mean"]
    head = f"{before['pairs']} → {last['pairs']} pairs gained {gain:+.4f} test SSIM"
    if last.get("stopped") != "plateau":
        return False, f"{head}, but its training hit the epoch cap (still improving)"
    if gain < min_gain:
        return True, f"{head} (< {min_gain:g}) and its training plateaued"
    return False, f"{head} (≥ {min_gain:g}): still gaining"


def run_doubling(
    levels: Sequence[int],
    fit_level: Callable[[int], dict[str, Any]],
    min_gain: float,
    folder: Path,
    available: int | None = None,
) -> dict[str, Any]:
    """Run the doubling over ``levels`` until :func:`saturation_verdict` says saturated.

    ``fit_level(n)``: trains on the first n pairs and returns its point (``pairs``, ``ssim``
    {"mean", ...}, ``stopped``, ...); it is called only for levels without a finished
    ``folder/<n>/level.json`` (a rerun reads those). ``available``: the pool's size when it is
    finite (levels above it are cut to it, and the record says the pool ran out).

    Returns {"status": "saturated" | "lower bound", "reason", "points", "levels_planned"}.
    """
    planned = [min(n, available) if available is not None else n for n in levels]
    planned = sorted(set(planned))
    points: list[dict[str, Any]] = []
    saturated, reason = False, "no level run"
    for n in planned:
        record = folder / str(n) / "level.json"
        if record.is_file():
            point = json.loads(record.read_text())
            log.info("level %d pairs: done before (test SSIM %.4f)", n, point["ssim"]["mean"])
        else:
            point = fit_level(n)
            record.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(record, json.dumps(point, indent=1, default=str))
        point["gain"] = point["ssim"]["mean"] - points[-1]["ssim"]["mean"] if points else None
        points.append(point)
        saturated, reason = saturation_verdict(points, min_gain)
        if saturated:
            break
    if not saturated:
        cut = available is not None and planned[-1] == available and available < levels[-1]
        reason += (
            f"; the pool ran out at {available} pairs" if cut else f"; cap of {planned[-1]} reached"
        )
    return {
        "status": "saturated" if saturated else "lower bound",
        "reason": reason,
        "points": points,
        "levels_planned": planned,
    }


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: an interruption leaves the old file
    or none, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class PairPool:
    """Attacker-train pairs, first ``n`` on demand: (captures, originals) (n, H, W, 3) uint8."""

    available: int | None = None  # None: unlimited

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    @property
    def seconds(self) -> float:
        """Wall time spent making pairs in this process."""
        return 0.0


class FixedPool(PairPool):
    """A finite pool: the attacker-train pairs of an already simulated :class:`PairSet`."""

    def __init__(self, pairs: PairSet) -> None:
        self.pairs = pairs
        self.available = len(pairs.train)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.pairs.train[: min(n, len(self.pairs.train))]
        return self.pairs.captures[idx], self.pairs.originals[idx]


class EmbeddedPool(PairPool):
    """Embedded ``train``-split scenes captured by ``camera``, made in chunks of
    ``chunk_pairs`` and written to ``folder`` as they are made (resumable); chunk k holds scenes
    k·chunk … (k+1)·chunk − 1 and its sensor noise is seeded by (seed, k), so the first n pairs
    are the same whatever was asked before. A folder made with another camera (PSF, config),
    size, seed or chunk size is refused."""

    def __init__(
        self,
        camera: torch.nn.Module,
        folder: str | Path,
        image_size: int,
        seed: int = 0,
        chunk_pairs: int = 300,
        device: str = "cpu",
    ) -> None:
        # eval mode: the PSF the captures are made with (training may perturb it)
        self.camera, self.folder, self.image_size = camera.eval(), Path(folder), image_size
        self.seed, self.chunk, self.device = seed, chunk_pairs, device
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._seconds = 0.0
        self.folder.mkdir(parents=True, exist_ok=True)
        self._check_manifest()

    def _psf(self) -> np.ndarray | None:
        with torch.no_grad():
            psf = self.camera.psf() if hasattr(self.camera, "psf") else None
        return None if psf is None else psf.detach().float().cpu().numpy()

    def _check_manifest(self) -> None:
        config = getattr(getattr(self.camera, "config", None), "to_dict", dict)()
        manifest = {
            "source": "embedded train split",
            "image_size": self.image_size,
            "seed": self.seed,
            "chunk_pairs": self.chunk,
            "camera": json.loads(json.dumps(config, default=str)),
        }
        path, psf_path = self.folder / "pool.json", self.folder / "psf.npy"
        psf = self._psf()
        if path.is_file():
            old = json.loads(path.read_text())
            old_psf = np.load(psf_path) if psf_path.is_file() else None
            same_psf = (old_psf is None) == (psf is None) and (
                psf is None
                or (old_psf.shape == psf.shape and np.allclose(old_psf, psf, atol=1e-6 * psf.max()))
            )
            changed = [k for k in manifest if old.get(k) != manifest[k]]
            if changed or not same_psf:
                what = ", ".join(changed + ([] if same_psf else ["PSF"]))
                raise ValueError(
                    f"pair pool {self.folder} was made with other settings ({what} differ): "
                    "its pairs are not this camera's; give another --out or delete that folder"
                )
            return
        _write_atomic(path, json.dumps(manifest, indent=1))
        if psf is not None:
            np.save(psf_path, psf)

    def _chunk(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k in self._cache:
            return self._cache[k]
        path = self.folder / f"train_{k:04d}.npz"
        if path.is_file():
            with np.load(path) as blob:
                chunk = (blob["captures"], blob["originals"])
        else:
            t = time.perf_counter()
            scenes = make_embedded_set(
                self.chunk, self.image_size, self.seed, split="train", first=k * self.chunk
            )
            noise_seed = int(np.random.SeedSequence([self.seed, k]).generate_state(1)[0])
            captures, _ = capture_images(self.camera, scenes.images, noise_seed, device=self.device)
            chunk = (captures, scenes.images)
            tmp = path.with_name(path.stem + ".tmp.npz")
            np.savez(tmp, captures=captures, originals=scenes.images)
            os.replace(tmp, path)
            self._seconds += time.perf_counter() - t
        self._cache[k] = chunk
        return chunk

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        chunks = -(-n // self.chunk)
        made = sum((self.folder / f"train_{k:04d}.npz").is_file() for k in range(chunks))
        if made < chunks:
            log.info("pair pool: %d of %d pairs on disk; generating the rest", made * self.chunk, n)
        parts = []
        for k in range(chunks):
            parts.append(self._chunk(k))
            if (k + 1) % 8 == 0 or k + 1 == chunks:
                log.info("pair pool: %d / %d pairs ready", min((k + 1) * self.chunk, n), n)
        captures = np.concatenate([p[0] for p in parts])[:n]
        originals = np.concatenate([p[1] for p in parts])[:n]
        return captures, originals

    @property
    def seconds(self) -> float:
        return self._seconds


def saturation_attack(kind: str, pool: PairPool, config: SaturationConfig) -> Callable[[Any], None]:
    """The ``--attack`` function of learned attacker ``kind`` in saturation mode: runs the
    doubling on ``pool`` and leaves the last level's reconstructions, training info and the
    curve (``info["saturation"]``) in the :class:`~attacks.registry.AttackRun`."""
    from .attackers import get_attacker
    from .strength import strength_point
    from .training import load_attacker, reconstruct

    spec = get_attacker(kind)

    def attack(run: Any) -> None:
        start = time.perf_counter()
        folder = run.out / "saturation" / kind
        _check_run_record(folder, _run_record(run, kind, config))
        infos: dict[int, dict[str, Any]] = {}

        def fit_level(n: int) -> dict[str, Any]:
            t = time.perf_counter()
            captures, originals = pool.get(n)
            pairs_s = time.perf_counter() - t
            log.info("%s: training on %d pairs (early stopping, patience %d)", kind, n,
                     config.patience)  # fmt: skip
            model, info = run.fit_arrays(
                kind, captures, originals, folder / str(n), config.max_epochs, config.patience
            )
            t = time.perf_counter()
            rec = reconstruct(model.generator, run.cap_test, run.batch_size, run.device)
            point = strength_point(kind, n, info, rec, run.ori_test)
            point.update(
                stopped=info["stopped"],
                checkpoint=info["checkpoint"],
                seconds_pairs=pairs_s,
                seconds_test=time.perf_counter() - t,
            )
            infos[n] = info
            log.info("%s: %d pairs → test SSIM %.4f (%d epochs, %s)", kind, n,
                     point["ssim"]["mean"], info["epochs"], info["stopped"])  # fmt: skip
            return point

        levels = doubling_levels(config.start_pairs, config.cap_pairs)
        curve = run_doubling(levels, fit_level, config.min_gain, folder, pool.available)
        last = curve["points"][-1]
        ckpt = Path(last["checkpoint"])
        if not ckpt.is_file():  # the run folder was moved since: the level's own copy
            ckpt = folder / str(last["pairs"]) / "checkpoints" / ckpt.name
        generator = load_attacker(ckpt).to(run.device)
        run.recons[kind] = reconstruct(generator, run.cap_test, run.batch_size, run.device)
        info = dict(infos.get(last["pairs"]) or _info_from_point(last))
        curve["seconds"] = time.perf_counter() - start
        info["saturation"] = curve
        run.learned[kind] = info
        verdict = (
            f"saturated at {last['pairs']} pairs"
            if curve["status"] == "saturated"
            else f"lower bound: not saturated at {last['pairs']} pairs"
        )
        run.labels[kind] = (
            f"{spec.label}, {last['pairs']} pairs, {last['epochs']} epochs "
            f"(best {last['best_epoch']}; {verdict})"
        )
        run.notes.append(f"{kind}: {verdict} ({curve['reason']}).")

    attack.__doc__ = f"Learned attacker {spec.label} trained to saturation."
    return attack


def _run_record(run: Any, kind: str, config: SaturationConfig) -> dict[str, Any]:
    """What a level's result depends on: the attacker and its options, the training settings
    and the PSF the captures were made with (digest). The cap and the gain are left out: a rerun
    with another cap or gain continues the same levels."""
    options = {k: v for k, v in run.options[kind].items() if not isinstance(v, torch.Tensor)}
    psf = (
        np.round(run.pairs.psf.numpy().astype(np.float64), 7) if run.pairs.psf is not None else None
    )
    digest = None if psf is None else hashlib.sha256(psf.tobytes()).hexdigest()[:16]
    return json.loads(json.dumps({
        "attacker": kind, "options": options, "batch_size": run.batch_size, "seed": run.seed,
        "start_pairs": config.start_pairs, "patience": config.patience,
        "max_epochs": config.max_epochs, "test_pairs": len(run.pairs.test), "psf": digest,
        "image_size": int(run.pairs.captures.shape[1]),
    }, default=str))  # fmt: skip


def _check_run_record(folder: Path, record: dict[str, Any]) -> None:
    """Write ``folder/run.json`` on the first run; refuse, by name, a folder whose levels were
    trained with other settings (their results would not be this run's)."""
    path = folder / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        changed = sorted(k for k in {*old, *record} if old.get(k) != record.get(k))
        if changed:
            raise ValueError(
                f"{folder} holds saturation levels trained with other settings "
                f"({', '.join(changed)} differ: { {k: old.get(k) for k in changed} }); give "
                "another --out or delete that folder"
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(record, indent=1))


def _info_from_point(point: dict[str, Any]) -> dict[str, Any]:
    """The training-info fields the report reads, from a level written by an earlier run."""
    keys = ("train_pairs", "val_pairs", "epochs", "best_epoch", "val_identity_ssim",
            "val_best_ssim", "val_history", "converged", "stopped", "checkpoint")  # fmt: skip
    keys += ("steps", "seconds", "content_loss", "backbone")
    info = {k: point.get(k) for k in keys}
    hist = point.get("val_history") or []
    info.update(
        kind=point["attacker"],
        val_last_ssim=hist[-1] if hist else None,
        val_start_ssim=None,
        resumed_from="level.json",
    )
    return info

"""The privacy study (``evaluate.py study``, ``make study``): does the lens hold against
attackers trained after it was frozen, and what utility does that cost?

One command, resumable stage by stage:

1. the ideal camera's captioner and the blind captioner (or ``--init-from`` an existing one);
2. one privacy lens per loss variant (:data:`STUDY_LENSES`), each trained from that captioner
   for ``lens_epochs``: the published loss, + the Wiener attack term, + an in-loop learned
   adversary (``configs/adversary.yaml``), that adversary lens with a 24 px PSF support
   trained twice as long, and that adversary lens with the band-MTF term; and the reference
   cameras (:data:`STUDY_REFERENCES`: defocus and lowres) trained the same way, the frontier's
   optical and non-optical baselines;
3. captions of every camera on the test split (``comparison.csv``);
4. fresh attacks on each lens and reference (``evaluate.py attack``: every attack, the
   strength curve, the in-loop attacker as a row) and a cheap one on the ideal camera (its
   captures are the scene);
5. the frontier (``endtoend.tradeoff``) and ``study.md``: lens × attack with SSIM, PSNR and
   face re-ID against chance, each lens's utility, and the issue's targets checked.

Every trained lens and attack folder records the settings it was made with
(``study_run.json``, ``attack_results.json``); a rerun reuses what matches and refuses what
does not, so an interrupted study loses no finished stage.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from attacks.attackers import learned_names
from endtoend.demo import ADVERSARY_CONFIG
from endtoend.train_run import Option, TrainRun, option_args, train

from .study_report import LENS_EPOCH_FACTOR, TARGETS, study_markdown

__all__ = [
    "STUDY_LENSES",
    "STUDY_REFERENCES",
    "TARGETS",
    "StudySettings",
    "run_study",
    "study_markdown",
]

progress = logging.getLogger("privcam.study")

# lens variant -> training options on top of the base config (demo.yaml: w_attack 12)
STUDY_LENSES: dict[str, tuple[Option, ...]] = {
    "published": (("model.w_attack", 0),),  # the published loss: captions, distortion, mask
    "wiener": (),  # + the base config's non-blind Wiener attack term
    "adversary": (("config", ADVERSARY_CONFIG),),  # + in-loop Wiener+U-Net attacker
    # + a PSF support of 24 px instead of 8 (of 64) and twice the epochs: the recipe that took
    # the best fresh attacker from 0.555 to 0.405 SSIM (docs/results.md); it departs from the
    # published small-sensor PSF constraint, hence a variant beside the published-mask one
    "adversary_wide": (("config", ADVERSARY_CONFIG), ("model.psf_mask_radius_px", 24)),
    # + the band-MTF term at the published 8 px support: at one 300-pair attacker budget it took
    # the demo lens's U-Net from 0.501 to 0.438 SSIM and its exact-model Wiener from 0.452 to
    # 0.411 for 0.012 shape F1, and at 1,200 pairs (40 epochs) its U-Net recovers >= 0.599
    # against the demo lens's >= 0.712 (docs/results.md, 2026-12-04; measured on the demo's
    # recipe, whose in-loop attacker has 8 channels instead of this one's default)
    "adversary_band": (("config", ADVERSARY_CONFIG), ("model.w_otf_band", 100.0)),
}
# the frontier's reference cameras (camera presets, trained from the same captioner as the
# lenses): plain defocus, the optical baseline a privacy lens must beat, and a low-resolution
# sensor, the non-optical one
STUDY_REFERENCES = ("defocus", "lowres")
_MARKER = "study_run.json"


@dataclass
class StudySettings:
    """What the study trains and runs (the defaults are the documented study)."""

    config: str = str(Path(ADVERSARY_CONFIG).with_name("demo.yaml"))  # this checkout's
    init_from: str | None = None  # the ideal captioner; None: train it (and blind) in out/
    blind_ckpt: str | None = None  # None: out/blind, or next to init_from's run
    lenses: tuple[str, ...] = tuple(STUDY_LENSES)
    references: tuple[str, ...] = STUDY_REFERENCES
    lens_epochs: int = 2
    max_images: int = 900  # 2:1 -> 600 attacker-train / 300 test pairs
    epochs: int = 10
    attacks: str = "all"
    strength_curve: str = "100,300,all"
    strength_attacker: str = "wiener_unet"
    ideal_attacks: str = "wiener"
    seed: int | None = None
    beam: int = 3
    extra_lens_options: dict[str, tuple[Option, ...]] = field(default_factory=dict)
    # learned attackers trained to saturation (attacks.saturation) instead of at one budget
    saturate: bool = False
    saturate_start: int = 600
    saturate_cap: int = 19200
    patience: int = 3
    saturate_max_epochs: int = 60
    device: str = "cpu"  # where the attack stage trains its attackers ("cuda" on a GPU box)

    def saturation_options(self) -> dict[str, Any]:
        """The attack stage's saturation options (``attacks.cli`` names; none without
        ``saturate``)."""
        if not self.saturate:
            return {}
        return {"saturate": True, "saturate_start": self.saturate_start,
                "saturate_cap": self.saturate_cap, "patience": self.patience,
                "saturate_max_epochs": self.saturate_max_epochs}  # fmt: skip

    def check(self) -> None:
        """Refuse bad settings by name before anything trains."""
        unknown = [lens for lens in self.lenses if lens not in STUDY_LENSES]
        if unknown or not self.lenses:
            raise ValueError(
                f"--lenses {list(self.lenses)}: choose one or more of {list(STUDY_LENSES)}"
            )
        unknown = [ref for ref in self.references if ref not in STUDY_REFERENCES]
        if unknown:
            raise ValueError(
                f"--references {list(self.references)}: choose from {list(STUDY_REFERENCES)} "
                "(or none)"
            )
        if not Path(self.config).is_file():
            raise FileNotFoundError(
                f"--train-config {self.config} not found (e.g. configs/demo.yaml)"
            )
        for flag, path in (("--init-from", self.init_from), ("--blind-ckpt", self.blind_ckpt)):
            if path is not None:
                from endtoend.checkpoints import training_checkpoint

                if not Path(path).is_file():
                    raise FileNotFoundError(
                        f"{flag} {path} not found: pass a training checkpoint "
                        "(runs/demo/ideal/checkpoints/best.ckpt after `make demo`) or leave "
                        "it out to train one in --out"
                    )
                training_checkpoint(path)
        from attacks.harness import expand_attacks, parse_strength_curve

        expand_attacks(self.attacks)
        expand_attacks(self.ideal_attacks)
        parse_strength_curve(self.strength_curve)
        if self.strength_attacker not in learned_names():
            raise ValueError(
                f"--strength-attacker {self.strength_attacker!r}: one of {list(learned_names())}"
            )
        if self.max_images < 6:
            raise ValueError(f"--max-images {self.max_images}: at least 6 (attacker pairs)")
        if self.saturate:
            from attacks.saturation import SaturationConfig

            SaturationConfig(
                start_pairs=self.saturate_start,
                cap_pairs=self.saturate_cap,
                patience=self.patience,
                max_epochs=self.saturate_max_epochs,
            )


def _reuse_or_clear(
    folder: Path,
    done: Path,
    record: Mapping[str, Any],
    what: str,
    superset: str = "",
    keep_unfinished: bool = False,
) -> bool:
    """True when ``done`` exists and ``folder/study_run.json`` equals ``record`` (the list
    under key ``superset`` may hold more: a run with more attacks serves); an unfinished folder
    is cleared (kept with ``keep_unfinished``: the stage resumes it itself, as a saturation
    run does its levels); a finished one made with other settings is refused by name."""
    marker = folder / _MARKER
    if done.is_file() and marker.is_file():
        recorded = json.loads(marker.read_text())
        record = json.loads(json.dumps(record))
        if superset and set(record.get(superset, ())) <= set(recorded.get(superset, ())):
            record[superset] = recorded[superset]
        if recorded == record:
            progress.info("[study] reusing %s in %s", what, folder)
            return True
        changed = sorted(k for k in {*record, *recorded} if recorded.get(k) != record.get(k))
        raise ValueError(
            f"{folder} holds {what} made with other settings ({', '.join(changed)} differ: "
            f"{ {k: recorded.get(k) for k in changed} }); remove the folder or choose another "
            "--out"
        )
    if folder.exists() and not keep_unfinished:  # interrupted: start the stage again
        shutil.rmtree(folder)
    return False


def _fingerprint(path: str | Path) -> str:
    """The first 16 hex digits of a file's SHA-256: markers name configs and checkpoints by
    content, so an edited config or a lens retrained at the same path is not taken for the
    one a finished stage was made from (~0.2 s for a 170 MB checkpoint; hashed once per
    version of the file, though the study checks each attack folder twice)."""
    stat = Path(path).stat()
    return _sha256_prefix(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_prefix(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 prefix of ``path`` (size and mtime only key the cache)."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _train(run: TrainRun, record: Mapping[str, Any], what: str) -> str:
    """Fit ``run`` into its folder unless a matching run is there; returns its best
    checkpoint."""
    folder = Path(run.run_dir)
    best = folder / "checkpoints" / "best.ckpt"
    if _reuse_or_clear(folder, best, record, what):
        return str(best)
    progress.info("[study] training %s in %s", what, folder)
    cli = train(run)
    found = cli.trainer.checkpoint_callback.best_model_path
    if Path(found) != best:  # the study's checkpoints have fixed names
        shutil.copyfile(found or folder / "checkpoints" / "last.ckpt", best)
    (folder / _MARKER).write_text(json.dumps(record, indent=1))
    return str(best)


def _captioners(out: Path, s: StudySettings) -> tuple[str, str | None]:
    """The ideal captioner every lens starts from, and the blind one (utility floor)."""
    from endtoend.demo import DEMO_BLIND_EPOCHS, demo_run

    if s.init_from is not None:
        ideal = s.init_from
        sibling = Path(ideal).parents[2] / "blind" / "checkpoints" / "best.ckpt"
        blind = s.blind_ckpt or (str(sibling) if sibling.is_file() else None)
        return ideal, blind
    record = {"config": str(Path(s.config).resolve()), "config_sha": _fingerprint(s.config),
              "seed": s.seed}  # fmt: skip
    run = demo_run("ideal", s.config, out / "ideal", seed=s.seed)
    ideal = _train(run, record, "the ideal captioner")
    if s.blind_ckpt is not None:
        return ideal, s.blind_ckpt
    run = demo_run("blind", s.config, out / "blind", max_epochs=DEMO_BLIND_EPOCHS, seed=s.seed)
    record = {**record, "epochs": DEMO_BLIND_EPOCHS}
    return ideal, _train(run, record, "the blind captioner")


def _lens(out: Path, lens: str, ideal: str, s: StudySettings) -> str:
    """Train (or reuse) the privacy lens of one loss variant, or a reference camera
    (:data:`STUDY_REFERENCES`: its own preset, the base config's options), from the ideal
    captioner."""
    from endtoend.demo import demo_run

    preset = lens if lens in STUDY_REFERENCES else "privacy"
    options = (*STUDY_LENSES.get(lens, ()), *s.extra_lens_options.get(lens, ()))
    epochs = s.lens_epochs * LENS_EPOCH_FACTOR.get(lens, 1)
    run = demo_run(preset, s.config, out / lens, options=options, init_from=ideal,
                   max_epochs=epochs, seed=s.seed)  # fmt: skip
    record = {
        "config": str(Path(s.config).resolve()),
        "config_sha": _fingerprint(s.config),
        # the options as arguments (what earlier studies recorded); a config file by name and
        # content
        "options": [
            f"{Path(o).name}@{_fingerprint(o)}" if o.endswith(".yaml") else o
            for o in option_args(options)
        ],
        "init_from": str(Path(ideal).resolve()),
        "init_from_sha": _fingerprint(ideal),
        "lens_epochs": epochs,
        "seed": s.seed,
    }
    if preset != "privacy":  # a reference camera's record says which (a lens's never did)
        record["preset"] = preset
    what = f"the '{lens}' privacy lens" if preset == "privacy" else f"the {lens} camera"
    return _train(run, record, what)


def _attack(
    folder: Path,
    ckpt: str,
    attacks: str,
    s: StudySettings,
    curve: bool,
    epochs: int,
    check_only: bool = False,
) -> Path:
    """``evaluate.py attack`` on one camera (fresh attackers, ``epochs`` each), unless a
    matching run is there; ``check_only``: only refuse a mismatched finished run (before the
    captions stage)."""
    from attacks.cli import attack_options, run
    from attacks.harness import expand_attacks

    results = folder / "attack_results.json"
    record = {
        "ckpt": str(Path(ckpt).resolve()),
        "ckpt_sha": _fingerprint(ckpt),  # a lens retrained at the same path is attacked again
        "attacks": expand_attacks(attacks),
        "max_images": s.max_images,
        "epochs": epochs,
        "strength_curve": s.strength_curve if curve else None,
        "strength_attacker": s.strength_attacker if curve else None,
        "saturation": s.saturation_options() or None,
    }
    # a saturation run resumes its pool and levels, and refuses them for another lens itself
    if (
        _reuse_or_clear(
            folder, results, record, "an attack run", "attacks", keep_unfinished=s.saturate
        )
        or check_only
    ):
        return results
    from endtoend.checkpoints import training_checkpoint

    raw = training_checkpoint(ckpt)  # read once: the data settings, the camera, its attacker
    data = raw.get("datamodule_hyper_parameters", {})
    # saturating, the attackers need more scenes than the data root holds: the embedded
    # generator makes them (the study's data set is the embedded one)
    images = "embedded" if s.saturate else str(data.get("root", "embedded"))
    options = attack_options(
        # every camera at the size its captioner saw (the ideal camera has no PSF to size it by)
        image_size=data.get("image_size") or None,
        ckpt=ckpt,
        images=images,
        split="all",
        max_images=s.max_images,
        attack=attacks,
        epochs=epochs,
        backbone_weights="none",
        out=str(folder),
        device=s.device,
        **s.saturation_options(),
    )
    if curve and not s.saturate:  # a saturation run measures its own curve per attacker
        options.strength_curve, options.strength_attacker = s.strength_curve, s.strength_attacker
    progress.info("[study] attacking %s -> %s", ckpt, folder)
    run(options, raw)
    (folder / _MARKER).write_text(json.dumps(record, indent=1))
    return results


def run_study(out: str | Path, settings: StudySettings | None = None) -> Path:
    """Run (or finish) the study in ``out``; returns ``out/study.md``."""
    from endtoend.evaluation import compare

    from .tradeoff import tradeoff_report

    s = settings or StudySettings()
    s.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def timed(name: str, job: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = job()
        timings[name] = time.perf_counter() - t0
        return value

    ideal, blind = timed("captioners", lambda: _captioners(out, s))
    lenses = {lens: timed(f"lens {lens}", lambda lens=lens: _lens(out, lens, ideal, s))
              for lens in (*s.lenses, *s.references)}  # fmt: skip
    attacked = {"ideal": ideal, **lenses}
    # a lens trained k× longer met its in-loop attacker k× as often: its fresh attackers
    # train k× the epochs, so they still see more pairs than the attacker the lens beat
    plans = {label: (ckpt, s.ideal_attacks if label == "ideal" else s.attacks,
                     label != "ideal" and bool(s.strength_curve),
                     s.epochs * LENS_EPOCH_FACTOR.get(label, 1))
             for label, ckpt in attacked.items()}  # fmt: skip
    for label, (ckpt, attacks, curve, epochs) in plans.items():  # refuse before captioning
        _attack(out / f"attacks_{label}", ckpt, attacks, s, curve, epochs, check_only=True)
    ckpts = [ideal, *([blind] if blind else []), *lenses.values()]
    progress.info("[study] captioning the test split with %d cameras", len(ckpts))
    # every lens by its variant, even a lone one; a reference camera by its preset
    lens_names = {ckpt: lens if lens in STUDY_REFERENCES else f"privacy ({lens})"
                  for lens, ckpt in lenses.items()}  # fmt: skip
    results = timed("captions", lambda: compare(ckpts, out, "test", beam=s.beam, names=lens_names))
    names = {str(Path(r["checkpoint"]).resolve()): r["camera"] for r in results}
    specs, attack_results = [], {}
    for label, (ckpt, attacks, curve, epochs) in plans.items():
        path = timed(
            f"attacks {label}",
            lambda ckpt=ckpt, label=label, attacks=attacks, curve=curve, epochs=epochs: _attack(
                out / f"attacks_{label}", ckpt, attacks, s, curve, epochs
            ),
        )
        name = names[str(Path(ckpt).resolve())]
        specs.append(f"{name}={path}")
        attack_results[label] = (name, json.loads(path.read_text()))
    tradeoff_report(out / "comparison.csv", specs, out)
    captions = {r["camera"]: r["metrics"] for r in results}
    text = study_markdown(s, captions, attack_results, (out / "tradeoff.md").read_text(), timings)
    report = out / "study.md"
    report.write_text(text)
    (out / "study_settings.json").write_text(json.dumps(asdict(s), indent=1, default=str))
    return report

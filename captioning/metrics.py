"""COCO caption metrics with pycocoevalcap's scorers, called directly.

``COCOEvalCap.evaluate()`` is never used: it always builds SPICE, which downloads Stanford
CoreNLP and fails offline. Here SPICE runs only when its CoreNLP jars are already in
pycocoevalcap's ``spice/lib`` folder (and Java is present).

Tokenisation: with Java, pycocoevalcap's Stanford PTB tokenizer (the official protocol); without
Java, :func:`captioning.vocab.tokenize` (a pure-Python equivalent) and METEOR (a Java program)
is reported as ``None``. :func:`fast_scores` (BLEU-4 + CIDEr-D, Python tokenizer, no Java) is
meant for per-epoch validation.

Grounding (embedded data set: do captions name what the image holds?) lives in
:mod:`captioning.grounding` and is re-exported here.

Scores are returned as fractions (BLEU 0..1, CIDEr-D 0..10); papers print them x100.
pycocoevalcap's ``Cider`` class is CIDEr-D (clipped n-gram counts, Gaussian length penalty
σ = 6, x10), reported here as ``"CIDEr-D"``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from captioning.grounding import GROUNDING_METRICS, grounding_scores
from captioning.vocab import PTB_PUNCTUATION, tokenize

__all__ = [
    "ALL_METRICS",
    "GROUNDING_METRICS",
    "fast_scores",
    "grounding_scores",
    "java_available",
    "load_results",
    "ptb_tokenize",
    "save_metrics",
    "save_results",
    "score_captions",
    "spice_available",
]

logger = logging.getLogger(__name__)

ALL_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SPICE")
_EVALCAP_PUNCTUATION = PTB_PUNCTUATION | {"-LRB-", "-RRB-", "-LCB-", "-RCB-"}


def _evalcap_dir() -> Path:
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__)))


def java_available() -> bool:
    """True when a ``java`` executable is on the PATH."""
    return shutil.which("java") is not None


def spice_available() -> bool:
    """True when SPICE can run offline (Java + CoreNLP 3.6.0 jars in pycocoevalcap/spice/lib)."""
    lib = _evalcap_dir() / "spice" / "lib"
    jars = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
    return java_available() and all((lib / j).is_file() for j in jars)


def ptb_tokenize(captions: Mapping[int, Sequence[str]]) -> dict[int, list[str]]:
    """Tokenise with pycocoevalcap's Stanford PTBTokenizer (needs Java).

    Same command and punctuation filter as ``pycocoevalcap.tokenizer.ptbtokenizer``, but the
    temporary file goes to the system temp folder (site-packages may be read-only).

    Args:
        captions: image id -> raw captions.

    Returns:
        image id -> tokenised captions (space-joined, lower case).
    """
    jar = _evalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    if not jar.is_file():
        raise FileNotFoundError(f"{jar} not found; reinstall pycocoevalcap")
    keys = [k for k, caps in captions.items() for _ in caps]
    lines = [c.replace("\n", " ") for caps in captions.values() for c in caps]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(lines))
        tmp = f.name
    try:
        cmd = [
            "java",
            "-cp",
            str(jar),
            "edu.stanford.nlp.process.PTBTokenizer",
            "-preserveLines",
            "-lowerCase",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, check=False)
    finally:
        os.remove(tmp)
    if proc.returncode != 0:
        raise RuntimeError(
            f"PTBTokenizer failed ({' '.join(cmd)}): {proc.stderr.decode(errors='replace')[-500:]}"
        )
    out_lines = proc.stdout.decode("utf-8").split("\n")
    result: dict[int, list[str]] = {k: [] for k in captions}
    for key, line in zip(keys, out_lines, strict=False):
        words = [w for w in line.rstrip().split(" ") if w not in _EVALCAP_PUNCTUATION]
        result[key].append(" ".join(words))
    return result


def _python_tokenize(captions: Mapping[int, Sequence[str]]) -> dict[int, list[str]]:
    return {k: [" ".join(tokenize(c)) for c in caps] for k, caps in captions.items()}


def _check_inputs(references: Mapping[int, Sequence[str]], candidates: Mapping[int, str]) -> None:
    missing = [k for k in candidates if k not in references]
    if missing:
        raise KeyError(f"no references for candidate image ids {missing[:10]}")
    empty = [k for k in candidates if not references[k]]
    if empty:
        raise ValueError(f"image ids {empty[:10]} have an empty reference list")
    if not candidates:
        raise ValueError("no candidate captions to score")


def score_captions(
    references: Mapping[int, Sequence[str]],
    candidates: Mapping[int, str],
    metrics: Iterable[str] = ALL_METRICS,
    tokenizer: str = "auto",
) -> dict[str, float | None]:
    """Corpus-level caption metrics.

    Args:
        references: image id -> raw reference captions (only ids in ``candidates`` are used).
        candidates: image id -> generated caption (raw).
        metrics: names from :data:`ALL_METRICS`.
        tokenizer: ``"ptb"`` (Java), ``"python"``, or ``"auto"`` (PTB when Java is present).

    Returns:
        metric name -> score, or None when it cannot run here (METEOR without Java, SPICE
        without its jars).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    metrics = list(metrics)
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {ALL_METRICS}")
    if tokenizer not in ("auto", "ptb", "python"):
        raise ValueError(f"tokenizer must be 'auto', 'ptb' or 'python', got {tokenizer!r}")
    _check_inputs(references, candidates)
    has_java = java_available()
    if tokenizer == "ptb" and not has_java:
        raise RuntimeError(
            "tokenizer='ptb' needs Java (not found on PATH); install a JRE "
            "or use tokenizer='python'"
        )
    if not has_java and ("METEOR" in metrics or "SPICE" in metrics or tokenizer == "auto"):
        logger.warning(
            "Java not found on PATH: METEOR and SPICE are unavailable (reported as "
            "None) and captions are tokenised with the Python PTB tokenizer"
        )
    use_ptb = tokenizer == "ptb" or (tokenizer == "auto" and has_java)
    ids = list(candidates)
    refs = {k: list(references[k]) for k in ids}
    cands = {k: [candidates[k]] for k in ids}
    tok = ptb_tokenize if use_ptb else _python_tokenize
    gts, res = tok(refs), tok(cands)

    results: dict[str, float | None] = {}
    if any(m.startswith("BLEU") for m in metrics):
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            if f"BLEU-{n + 1}" in metrics:
                results[f"BLEU-{n + 1}"] = float(bleu[n])
    if "METEOR" in metrics:
        results["METEOR"] = _meteor(gts, res) if has_java else None
    if "ROUGE-L" in metrics:
        results["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    if "CIDEr-D" in metrics:
        results["CIDEr-D"] = float(Cider().compute_score(gts, res)[0])
    if "SPICE" in metrics:
        if spice_available():
            from pycocoevalcap.spice.spice import Spice

            results["SPICE"] = float(Spice().compute_score(gts, res)[0])
        else:
            logger.info(
                "SPICE skipped: its Stanford CoreNLP 3.6.0 jars are not in %s "
                "(it cannot download them offline)",
                _evalcap_dir() / "spice" / "lib",
            )
            results["SPICE"] = None
    return {m: results[m] for m in metrics}


def _meteor(gts: dict[int, list[str]], res: dict[int, list[str]]) -> float | None:
    """METEOR by pycocoevalcap's Java scorer. Its JVM occasionally answers nothing (seen once
    on this project's CPU box under load: ``float(b'')``); a fresh JVM gets one more try, then
    METEOR is left out (None) with a warning, so an evaluation that trained for an hour keeps
    its other metrics."""
    from pycocoevalcap.meteor.meteor import Meteor

    failure = ""
    for _ in range(2):
        scorer = Meteor()
        try:
            return float(scorer.compute_score(gts, res)[0])
        except (ValueError, OSError) as err:  # no or garbled answer, or a closed pipe
            scorer.meteor_p.kill()
            said = scorer.meteor_p.stderr.read().decode(errors="replace").strip()
            failure = f"{type(err).__name__}: {err}" + (
                f"; java said: {said[-300:]}" if said else ""
            )
        finally:
            with contextlib.suppress(OSError):  # a dead JVM's pipe may refuse the flush
                scorer.meteor_p.stdin.close()
            scorer.meteor_p.kill()
            scorer.meteor_p.wait()
    logger.warning(
        "METEOR left out: pycocoevalcap's Java scorer gave no score twice (%s); the other "
        "metrics stand. Check `java -version` and free memory (it starts with -Xmx2G).",
        failure,
    )
    return None


def fast_scores(
    references: Mapping[int, Sequence[str]], candidates: Mapping[int, str]
) -> dict[str, float]:
    """BLEU-4 and CIDEr-D with the Python tokenizer (no Java): per-epoch validation."""
    scores = score_captions(references, candidates, ("BLEU-4", "CIDEr-D"), tokenizer="python")
    return {k: float(v) for k, v in scores.items() if v is not None}


def save_results(path: str | Path, candidates: Mapping[int, str]) -> None:
    """Write COCO results format ``[{"image_id": int, "caption": str}]``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"image_id": int(k), "caption": v} for k, v in candidates.items()]))


def load_results(path: str | Path) -> dict[int, str]:
    """Read a COCO results file back into image id -> caption."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} not found")
    try:
        data = json.loads(path.read_text())
        return {int(e["image_id"]): str(e["caption"]) for e in data}
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path}: expected COCO results [{{'image_id', 'caption'}}] ({err})"
        ) from err


def save_metrics(path: str | Path, metrics: Mapping[str, float | None], **info: object) -> None:
    """Write the metrics (and any extra info) as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metrics": dict(metrics), **info}, indent=2))

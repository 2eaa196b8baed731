"""Caption metrics: hand-made cases, an independent CIDEr-D, agreement with pycocoevalcap."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path

import pytest

from captioning import metrics as metrics_module
from captioning.metrics import (
    fast_scores,
    java_available,
    load_results,
    save_metrics,
    save_results,
    score_captions,
)

needs_java = pytest.mark.skipif(not java_available(), reason="needs Java (PTB tokenizer, METEOR)")

REFS = {
    1: [
        "a red circle to the left of a blue square",
        "a red circle and a blue square",
        "there is a red circle on a striped background",
    ],
    2: [
        "a small face above a green star",
        "a green star below a small face",
        "an image of a face and a star",
    ],
    3: [
        "a large yellow ring on a noisy background",
        "a yellow ring in the middle of the image",
        "a picture of a large ring",
    ],
}
CANDS = {
    1: "a red circle to the left of a green square",
    2: "a face above a star",
    3: "a large yellow ring on a checkered background",
}


def _cider_d(
    refs: dict[int, list[str]], cands: dict[int, str], n: int = 4, sigma: float = 6.0
) -> float:
    """CIDEr-D from its definition (Vedantam et al. 2015 + the coco-caption D variant)."""

    def grams(sentence: str, k: int) -> Counter:
        w = sentence.split()
        return Counter(tuple(w[i : i + k]) for i in range(len(w) - k + 1))

    log_n_images = math.log(len(refs))
    df: Counter = Counter()
    for caps in refs.values():
        df.update({g for c in caps for k in range(1, n + 1) for g in grams(c, k)})

    def vec(sentence: str, k: int) -> dict:
        return {
            g: tf * (log_n_images - math.log(max(1.0, df[g])))
            for g, tf in grams(sentence, k).items()
        }

    total = 0.0
    for image_id, cand in cands.items():
        score = 0.0
        for ref in refs[image_id]:
            delta = len(cand.split()) - len(ref.split())
            for k in range(1, n + 1):
                vc, vr = vec(cand, k), vec(ref, k)
                norm_c = math.sqrt(sum(v * v for v in vc.values()))
                norm_r = math.sqrt(sum(v * v for v in vr.values()))
                dot = sum(min(v, vr.get(g, 0.0)) * vr.get(g, 0.0) for g, v in vc.items())
                if norm_c and norm_r:
                    dot /= norm_c * norm_r
                score += dot * math.exp(-(delta**2) / (2 * sigma**2)) / n
        total += 10.0 * score / len(refs[image_id])
    return total / len(cands)


def test_identical_candidates() -> None:
    refs = {1: ["a red circle on a striped background"], 2: ["two small faces above a blue star"]}
    cands = {1: "a red circle on a striped background", 2: "two small faces above a blue star"}
    scores = score_captions(
        refs, cands, ("BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr-D"), tokenizer="python"
    )
    assert scores["BLEU-1"] == pytest.approx(1.0, abs=1e-6)
    assert scores["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert scores["ROUGE-L"] == pytest.approx(1.0)
    # by hand: disjoint references, so every n-gram has df = 1 and weight tf * log 2; each
    # candidate vector equals its reference vector -> cosine 1 for n = 1..4, no length
    # penalty, mean over n = 1, one reference, x10  => CIDEr-D = 10
    assert scores["CIDEr-D"] == pytest.approx(10.0)


def test_cider_d_and_bleu_by_independent_implementation() -> None:
    scores = score_captions(REFS, CANDS, ("BLEU-1", "CIDEr-D"), tokenizer="python")
    assert scores["CIDEr-D"] == pytest.approx(_cider_d(REFS, CANDS), rel=1e-9)
    # BLEU-1 by hand: clipped unigram matches / candidate words = (9 + 5 + 7) / (10 + 5 + 8)
    # ("green" and "checkered" miss); brevity penalty from the closest reference lengths
    # r = 10 + 7 + 8 = 25 > c = 23  ->  exp(1 - 25 / 23)
    precision = (9 + 5 + 7) / 23
    bp = math.exp(1 - 25 / 23)
    assert scores["BLEU-1"] == pytest.approx(bp * precision, rel=1e-6)


def test_fast_scores_and_files(tmp_path: Path) -> None:
    fast = fast_scores(REFS, CANDS)
    assert set(fast) == {"BLEU-4", "CIDEr-D"}
    assert fast["CIDEr-D"] == pytest.approx(_cider_d(REFS, CANDS))
    save_results(tmp_path / "results.json", CANDS)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data[0] == {"image_id": 1, "caption": CANDS[1]}
    assert load_results(tmp_path / "results.json") == CANDS
    save_metrics(tmp_path / "metrics.json", fast, split="test")
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == fast
    with pytest.raises(KeyError, match="99"):
        score_captions(REFS, {99: "a cat"})


def test_without_java(monkeypatch, caplog) -> None:
    monkeypatch.setattr(metrics_module.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING, logger="captioning.metrics"):
        scores = score_captions(REFS, CANDS)
    assert "Java not found" in caplog.text
    assert scores["METEOR"] is None and scores["SPICE"] is None
    expected = score_captions(REFS, CANDS, ("CIDEr-D",), tokenizer="python")["CIDEr-D"]
    assert scores["CIDEr-D"] == pytest.approx(expected)
    assert all(scores[m] is not None for m in ("BLEU-1", "BLEU-4", "ROUGE-L"))
    with pytest.raises(RuntimeError, match="needs Java"):
        score_captions(REFS, CANDS, tokenizer="ptb")


def test_a_jvm_that_answers_nothing_is_retried_then_meteor_is_left_out(monkeypatch, caplog):
    """pycocoevalcap's METEOR JVM once answered nothing mid-study (``float(b'')``): one fresh
    retry, then None and a warning, never a lost evaluation."""
    import io
    import subprocess

    from pycocoevalcap.meteor import meteor as meteor_module

    answers: list[object] = []

    class FakeMeteor:  # the pycocoevalcap interface _meteor uses, with a scripted JVM
        def __init__(self):
            self.meteor_p = subprocess.Popen(["sleep", "30"], stdin=subprocess.PIPE,
                                             stderr=subprocess.PIPE)  # fmt: skip
            self.meteor_p.stderr = io.BytesIO(b"java.lang.OutOfMemoryError")

        def compute_score(self, gts, res):
            answer = answers.pop(0)
            return float(answer), []  # float(b"") raises as pycocoevalcap does

    monkeypatch.setattr(meteor_module, "Meteor", FakeMeteor)
    gts = {1: ["a red circle"]}
    answers[:] = [b"", 0.25]  # the first JVM dies, the second answers
    assert metrics_module._meteor(gts, gts) == 0.25 and not answers
    answers[:] = [b"", b""]
    with caplog.at_level(logging.WARNING, logger="captioning.metrics"):
        assert metrics_module._meteor(gts, gts) is None
    assert "METEOR left out" in caplog.text and "OutOfMemoryError" in caplog.text


@needs_java
def test_agrees_with_pycocoevalcap_run_directly() -> None:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    refs = {k: [*v, v[0].upper() + "!"] for k, v in REFS.items()}  # punctuation, case
    cands = {k: v.capitalize() + "." for k, v in CANDS.items()}
    ours = score_captions(
        refs, cands, ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
    )
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": v}] for k, v in cands.items()})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    meteor = Meteor()
    expected = {
        "BLEU-1": bleu[0],
        "BLEU-2": bleu[1],
        "BLEU-3": bleu[2],
        "BLEU-4": bleu[3],
        "METEOR": meteor.compute_score(gts, res)[0],
        "ROUGE-L": Rouge().compute_score(gts, res)[0],
        "CIDEr-D": Cider().compute_score(gts, res)[0],
    }
    del meteor
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-9), name
    assert 0 < ours["METEOR"] < 1
    # the Python tokenizer gives the same numbers on these captions
    python = score_captions(refs, cands, ("BLEU-4", "ROUGE-L", "CIDEr-D"), tokenizer="python")
    for name, value in python.items():
        assert value == pytest.approx(ours[name], abs=1e-9), name

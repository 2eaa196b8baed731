"""Grounding: does a caption name what is in the image? (embedded data set)

n-gram metrics (BLEU, CIDEr-D) compare a caption with reference sentences. On the embedded
data set the references share a small grammar, so a captioner that never looks at the image
scores well on them by repeating the grammar's commonest sentence. This metric instead checks
every object and attribute a caption names against the generator's ground truth (the
``scene`` field that :mod:`captioning.synthetic` writes into the data set files):

* **shapes**: the object kinds named (circle … diamond, face) vs the kinds present;
* **colours**: the colour words named vs the colours of the objects present;
* **background**: the background pattern named (striped, checkered, …) vs the true one;
* **objects**: a named object with its attributes (e.g. "large red circle") is right when an
  object of that kind with every named attribute is in the image (attribute binding);
* **relations**: "A left of / right of / above / below B" where A and B both match objects,
  checked against their true relation.

Per image, the named and the true concepts are sets; true positives, false positives and
misses are summed over the corpus (micro average). ``shape_f1`` is the harmonic mean of shape
precision and recall (shapes are what blur destroys first; colours survive it);
``grounding_f1`` pools shapes, colours and background. Synonyms and plurals ("circles",
"disc", "grey", "checked", "to the left of", "under", ...) map to the generator's words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GROUNDING_METRICS",
    "SCENE_LABELS",
    "GroundingCounts",
    "grounding_scores",
    "parse_caption",
    "scene_labels",
]

_SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "circles", "disc", "discs", "disk", "disks", "dot"),
    "square": ("square", "squares", "box", "boxes"),
    "triangle": ("triangle", "triangles"),
    "star": ("star", "stars"),
    "ring": ("ring", "rings", "donut", "donuts", "annulus"),
    "cross": ("cross", "crosses", "plus"),
    "diamond": ("diamond", "diamonds", "rhombus", "lozenge"),
    "face": ("face", "faces", "person", "people", "portrait", "head", "heads"),
}
_COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red",),
    "green": ("green",),
    "blue": ("blue",),
    "yellow": ("yellow",),
    "purple": ("purple", "violet"),
    "orange": ("orange",),
    "white": ("white",),
}
_BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "stripes": ("striped", "stripes", "stripy", "lined"),
    "checks": ("checkered", "chequered", "checked", "checks", "checkerboard", "checkboard"),
    "noise": ("noisy", "noise", "speckled", "grainy"),
    "gradient": ("gradient", "graded", "shaded"),
    "dots": ("dotted", "dots", "spotted", "polka"),
}
_SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "large": ("large", "big", "huge"),
}
# multi-word relations first: "to the left of" must win over a bare "left"
_RELATION_PHRASES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("to", "the", "left", "of"), "left"),
    (("to", "the", "right", "of"), "right"),
    (("on", "top", "of"), "above"),
    (("left", "of"), "left"),
    (("right", "of"), "right"),
    (("above",), "above"),
    (("over",), "above"),
    (("below",), "below"),
    (("under",), "below"),
    (("underneath",), "below"),
    (("beneath",), "below"),
)
_INVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}


def _lookup(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {word: canon for canon, words in table.items() for word in words}


_SHAPES, _COLOURS = _lookup(_SHAPE_WORDS), _lookup(_COLOUR_WORDS)
_BACKGROUNDS, _SIZES = _lookup(_BACKGROUND_WORDS), _lookup(_SIZE_WORDS)
_TOKEN = re.compile(r"[a-z]+")

# what a scene contains, as multi-hot labels (the object/attribute supervision that bottom-up
# captioning features are trained with, here from the generator's ground truth)
SCENE_LABELS: tuple[str, ...] = (
    *(f"shape:{k}" for k in _SHAPE_WORDS),
    *(f"colour:{c}" for c in _COLOUR_WORDS),
    *(f"background:{b}" for b in _BACKGROUND_WORDS),
)


def scene_labels(scene: Mapping[str, Any]) -> list[float]:
    """Multi-hot vector over :data:`SCENE_LABELS` of one ground-truth ``scene``."""
    present = {f"shape:{o['kind']}" for o in scene["objects"]}
    present |= {f"colour:{o['colour']}" for o in scene["objects"] if o.get("colour")}
    present.add(f"background:{scene['background']}")
    unknown = present - set(SCENE_LABELS)
    if unknown:
        raise ValueError(f"scene labels {sorted(unknown)} are not in SCENE_LABELS")
    return [1.0 if label in present else 0.0 for label in SCENE_LABELS]


GROUNDING_METRICS = (
    "shape_precision", "shape_recall", "shape_f1", "colour_precision", "colour_recall",
    "background_precision", "background_recall", "object_precision", "relation_accuracy",
    "grounding_precision", "grounding_recall", "grounding_f1",
)  # fmt: skip


def _f1(p: float | None, r: float | None) -> float | None:
    """Harmonic mean of micro precision ``p`` and recall ``r``: None when there was nothing to
    find (``r`` undefined), 0 when something was but nothing (right) was named."""
    if r is None:
        return None
    if p is None or p + r == 0:
        return 0.0
    return 2 * p * r / (p + r)


@dataclass
class Mention:
    """One object named in a caption: ``kind`` (canonical) and the attributes named with it."""

    kind: str
    colour: str | None = None
    size: str | None = None


@dataclass
class ParsedCaption:
    objects: list[Mention]
    colours: set[str]
    backgrounds: set[str]
    relations: list[tuple[int, str, int]]  # (mention index, relation, mention index)


def _relation_at(tokens: list[str], i: int) -> tuple[tuple[str, ...], str] | None:
    for phrase, relation in _RELATION_PHRASES:
        if tuple(tokens[i : i + len(phrase)]) == phrase:
            return phrase, relation
    return None


def parse_caption(caption: str) -> ParsedCaption:
    """Objects, colour words, background words and relations named in a caption.

    Attributes (size, colour) attach to the next object noun; a colour word not followed by an
    object noun still counts as a named colour. A relation phrase between two object nouns
    relates them; "A and B" relates nothing.
    """
    tokens = _TOKEN.findall(caption.lower())
    objects: list[Mention] = []
    colours: set[str] = set()
    backgrounds: set[str] = set()
    relations: list[tuple[int, str, int]] = []
    colour = size = None
    pending: tuple[int, str] | None = None  # (left mention, relation) waiting for its right
    i = 0
    while i < len(tokens):
        word = tokens[i]
        phrase = _relation_at(tokens, i)
        if phrase is not None and objects:
            pending = (len(objects) - 1, phrase[1])
            i += len(phrase[0])
            continue
        if word in _COLOURS:
            colour = _COLOURS[word]
            colours.add(colour)
        elif word in _SIZES:
            size = _SIZES[word]
        elif word in _BACKGROUNDS:
            backgrounds.add(_BACKGROUNDS[word])
        elif word in _SHAPES:
            objects.append(Mention(_SHAPES[word], colour, size))
            if pending is not None:
                relations.append((pending[0], pending[1], len(objects) - 1))
                pending = None
            colour = size = None
        elif word == "and":
            pending = None
        i += 1
    return ParsedCaption(objects, colours, backgrounds, relations)


@dataclass
class GroundingCounts:
    """Corpus sums of true positives, false positives and misses per concept."""

    tp: dict[str, int]
    fp: dict[str, int]
    fn: dict[str, int]
    images: int = 0

    @classmethod
    def zeros(cls) -> GroundingCounts:
        keys = ("shape", "colour", "background", "object", "relation")
        return cls({k: 0 for k in keys}, {k: 0 for k in keys}, {k: 0 for k in keys})

    def add(self, key: str, named: set, true: set) -> None:
        self.tp[key] += len(named & true)
        self.fp[key] += len(named - true)
        self.fn[key] += len(true - named)

    def scores(self) -> dict[str, float | None]:
        """Precision / recall per concept, shape F1, relation accuracy, pooled grounding P/R/F1.

        A ratio with an empty denominator (nothing named, nothing to find) is None."""

        def ratio(num: int, den: int) -> float | None:
            return num / den if den else None

        out: dict[str, float | None] = {}
        for key in ("shape", "colour", "background"):
            out[f"{key}_precision"] = ratio(self.tp[key], self.tp[key] + self.fp[key])
            out[f"{key}_recall"] = ratio(self.tp[key], self.tp[key] + self.fn[key])
        out["shape_f1"] = _f1(out["shape_precision"], out["shape_recall"])
        out["object_precision"] = ratio(self.tp["object"], self.tp["object"] + self.fp["object"])
        out["relation_accuracy"] = ratio(
            self.tp["relation"], self.tp["relation"] + self.fp["relation"]
        )
        pooled = ("shape", "colour", "background")
        tp = sum(self.tp[k] for k in pooled)
        p = ratio(tp, tp + sum(self.fp[k] for k in pooled))
        r = ratio(tp, tp + sum(self.fn[k] for k in pooled))
        out["grounding_precision"], out["grounding_recall"] = p, r
        out["grounding_f1"] = _f1(p, r)
        return out


def _matches(mention: Mention, obj: Mapping[str, Any]) -> bool:
    return (
        mention.kind == obj["kind"]
        and (mention.colour is None or mention.colour == obj.get("colour"))
        and (mention.size is None or mention.size == obj.get("size"))
    )


def _true_relation(scene: Mapping[str, Any], a: int, b: int) -> str | None:
    relation = scene.get("relation")
    if relation is None or {a, b} != {0, 1}:
        return None
    return relation if (a, b) == (0, 1) else _INVERSE[relation]


def count_image(counts: GroundingCounts, caption: str, scene: Mapping[str, Any]) -> None:
    """Add one caption's counts against its image's ground truth ``scene``."""
    parsed = parse_caption(caption)
    objects = list(scene["objects"])
    counts.add("shape", {m.kind for m in parsed.objects}, {o["kind"] for o in objects})
    counts.add("colour", parsed.colours, {o["colour"] for o in objects if o.get("colour")})
    counts.add("background", parsed.backgrounds, {scene["background"]})
    matched: list[list[int]] = []
    for mention in parsed.objects:
        hits = [j for j, o in enumerate(objects) if _matches(mention, o)]
        matched.append(hits)
        counts.tp["object"] += bool(hits)
        counts.fp["object"] += not hits
    for left, relation, right in parsed.relations:
        # checkable when both sides match distinct objects; right when any such pair agrees
        pairs = [(a, b) for a in matched[left] for b in matched[right] if a != b]
        truths = {_true_relation(scene, a, b) for a, b in pairs} - {None}
        if truths:
            counts.tp["relation"] += relation in truths
            counts.fp["relation"] += relation not in truths
    counts.images += 1


def grounding_scores(
    scenes: Mapping[int, Mapping[str, Any]], candidates: Mapping[int, str]
) -> dict[str, float | None]:
    """Grounding precision / recall of generated captions (see the module docstring).

    Args:
        scenes: image id -> ground truth ``scene`` (``{"background", "relation", "objects"}``).
        candidates: image id -> generated caption.

    Returns:
        :data:`GROUNDING_METRICS` as fractions (None where nothing could be counted).
    """
    missing = [k for k in candidates if k not in scenes]
    if missing:
        raise KeyError(
            f"no ground-truth scene for image ids {missing[:10]}: grounding needs a data set "
            "written by captioning.synthetic (its 'scene' fields)"
        )
    if not candidates:
        raise ValueError("no candidate captions to score")
    counts = GroundingCounts.zeros()
    for image_id, caption in candidates.items():
        count_image(counts, caption, scenes[image_id])
    return counts.scores()

"""What an embedded scene holds and how it is described, without pixels: the vocabulary
(shapes, colours, backgrounds, relations), the scene sampler and the caption grammar.

A scene is one or two objects on a background; two objects stand in a relation (left of / right
of / above / below). Each caption names the objects, their attributes at random, and the
relation or the background, in one of several wordings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "RELATIONS",
    "SHAPES",
    "Scene",
    "SceneObject",
    "make_captions",
    "sample_scene",
]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 70, 230),
    "yellow": (240, 220, 30),
    "purple": (150, 40, 190),
    "orange": (250, 140, 20),
    "white": (250, 250, 250),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross", "diamond")
BACKGROUNDS: dict[str, str] = {
    "stripes": "striped",
    "checks": "checkered",
    "noise": "noisy",
    "gradient": "gradient",
    "dots": "dotted",
}
RELATIONS: dict[str, str] = {
    "left": "to the left of",
    "right": "to the right of",
    "above": "above",
    "below": "below",
}
_INVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}


@dataclass
class SceneObject:
    kind: str  # a shape name or "face"
    colour: str | None  # None for faces
    size: str  # "small" | "large"
    centre: tuple[float, float]  # (x, y) in [0, 1]
    face_index: int = -1
    bbox: list[int] = field(default_factory=list)  # [x, y, w, h] px, filled by draw_scene

    def to_dict(self) -> dict[str, Any]:
        """Ground-truth entry written into the data set files (``scene.objects[i]``)."""
        return {
            "kind": self.kind,
            "colour": self.colour,
            "size": self.size,
            "centre": [round(c, 4) for c in self.centre],
            "bbox": list(self.bbox),
        }

    def phrase(self, rng: np.random.Generator, detail: float) -> str:
        """Noun phrase, attributes dropped at random (``detail`` = keep probability)."""
        words = []
        if rng.random() < detail:
            words.append(self.size)
        if self.colour is not None and rng.random() < max(detail, 0.7):
            words.append(self.colour)
        words.append(self.kind)
        return " ".join(words)


@dataclass
class Scene:
    background: str
    objects: list[SceneObject]
    relation: str | None = None  # relation of objects[0] to objects[1]
    faces: list[list[int]] = field(default_factory=list)  # [x, y, w, h] boxes

    def to_dict(self) -> dict[str, Any]:
        """The ``scene`` field of an image entry (see the module docstring)."""
        return {
            "background": self.background,
            "relation": self.relation,
            "objects": [o.to_dict() for o in self.objects],
        }


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def sample_scene(rng: np.random.Generator, face_probability: float = 0.4) -> Scene:
    """Draw the content of one scene (no pixels)."""
    background = str(rng.choice(list(BACKGROUNDS)))
    n_objects = 1 if rng.random() < 0.35 else 2
    has_face = rng.random() < face_probability
    kinds = [str(rng.choice(SHAPES)) for _ in range(n_objects)]
    if has_face:
        kinds[int(rng.integers(n_objects))] = "face"
    colours = list(rng.choice(list(COLOURS), size=n_objects, replace=False))
    sizes = [str(rng.choice(["small", "large"])) for _ in range(n_objects)]
    objects = []
    relation = None
    if n_objects == 1:
        centre = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)))
        centres = [centre]
    else:
        relation = str(rng.choice(list(RELATIONS)))
        main, other = float(rng.uniform(0.22, 0.3)), float(rng.uniform(0.7, 0.78))
        cross = [float(rng.uniform(0.35, 0.65)) for _ in range(2)]
        if relation in ("left", "above"):
            along = [main, other]
        else:
            along = [other, main]
        if relation in ("left", "right"):
            centres = [(along[0], cross[0]), (along[1], cross[1])]
        else:
            centres = [(cross[0], along[0]), (cross[1], along[1])]
    for kind, colour, size, centre in zip(kinds, colours, sizes, centres, strict=True):
        objects.append(
            SceneObject(
                kind=kind,
                colour=None if kind == "face" else str(colour),
                size=size,
                centre=centre,
                face_index=int(rng.integers(100)) if kind == "face" else -1,
            )
        )
    return Scene(background, objects, relation)


def make_captions(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` differently worded captions of a scene."""
    bg = BACKGROUNDS[scene.background]
    captions: list[str] = []
    attempts = 0
    while len(captions) < n:
        attempts += 1
        detail = 1.0 if attempts <= 2 else 0.6
        if len(scene.objects) == 1:
            a = _article(scene.objects[0].phrase(rng, detail))
            templates = [
                f"{a} on {_article(bg)} background",
                f"there is {a} on {_article(bg)} background",
                f"a picture of {a}",
                f"{_article(bg)} background with {a}",
                f"{a} in the middle of the image",
                f"an image showing {a}",
                f"{a} in front of {_article(bg)} pattern",
            ]
        else:
            first, second = scene.objects
            a = _article(first.phrase(rng, detail))
            b = _article(second.phrase(rng, detail))
            rel = RELATIONS[scene.relation or "left"]
            inv = RELATIONS[_INVERSE[scene.relation or "left"]]
            templates = [
                f"{a} {rel} {b}",
                f"{b} {inv} {a}",
                f"{a} {rel} {b} on {_article(bg)} background",
                f"{a} and {b} on {_article(bg)} background",
                f"there is {a} {rel} {b}",
                f"{_article(bg)} background with {a} and {b}",
                f"an image of {b} {inv} {a}",
            ]
        caption = str(templates[int(rng.integers(len(templates)))])
        if caption not in captions or attempts > 50:
            captions.append(caption)
    return captions

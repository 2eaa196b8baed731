"""Rendering an embedded scene: uint8 pixels, boxes inside the image, deterministic per seed."""

from __future__ import annotations

import numpy as np

from captioning.scene_drawing import draw_scene
from captioning.scene_grammar import sample_scene


def test_drawn_scene_fills_its_boxes_and_repeats_per_seed() -> None:
    size = 48
    for i in range(10):
        scene = sample_scene(np.random.default_rng([1, i]))
        image = draw_scene(scene, size, np.random.default_rng([2, i]))
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        again = draw_scene(scene, size, np.random.default_rng([2, i]))
        assert np.array_equal(image, again)
        for obj in scene.objects:
            x, y, w, h = obj.bbox
            assert 0 <= x and 0 <= y and 0 < w and 0 < h and x + w <= size and y + h <= size
        assert scene.faces == [o.bbox for o in scene.objects if o.kind == "face"]

"""The embedded scenes' content and captions, without pixels (the written files are in
test_synthetic.py)."""

from __future__ import annotations

import numpy as np

from captioning.scene_grammar import BACKGROUNDS, RELATIONS, make_captions, sample_scene


def test_scenes_and_captions_name_what_the_scene_holds() -> None:
    for i in range(20):
        rng = np.random.default_rng([0, i])
        scene = sample_scene(rng)
        assert scene.background in BACKGROUNDS and 1 <= len(scene.objects) <= 2
        assert (scene.relation is None) == (len(scene.objects) == 1)
        assert scene.relation is None or scene.relation in RELATIONS
        captions = make_captions(scene, rng)
        assert len(captions) == len(set(captions)) == 5
        for caption in captions:
            assert all(o.kind in caption for o in scene.objects), (caption, scene)

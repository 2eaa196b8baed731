"""attacks.study: the settings are checked by name before anything trains (the full run on
tiny data is tests/e2e/test_study.py)."""

from __future__ import annotations

import pytest

from attacks.study import StudySettings


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lenses": ("published", "mystery")}, "--lenses"),
        ({"lenses": ()}, "--lenses"),
        ({"config": "nowhere.yaml"}, "--config nowhere.yaml"),
        ({"init_from": "nowhere.ckpt"}, "--init-from nowhere.ckpt"),
        ({"attacks": "wienr"}, "wienr"),
        ({"strength_curve": "1,all"}, "strength curve point"),
        ({"strength_attacker": "wiener"}, "--strength-attacker"),
        ({"max_images": 3}, "--max-images 3"),
    ],
)
def test_bad_settings_are_refused_by_name(change, message):
    settings = StudySettings(**change)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        settings.check()

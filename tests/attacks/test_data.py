"""attacks.data: every attack-data name is importable from it, the very objects of
attacks.scenes and attacks.pairs (the command line and external code import them from here)."""

import attacks.data
from attacks import pairs, scenes


def test_data_re_exports_scenes_and_pairs():
    for name in attacks.data.__all__:
        home = scenes if name in scenes.__all__ else pairs
        assert getattr(attacks.data, name) is getattr(home, name), name
    assert set(attacks.data.__all__) == (set(scenes.__all__) | set(pairs.__all__)) - {"Box"}

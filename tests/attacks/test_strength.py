"""The strength curve's pair counts (its retraining runs in test_harness's end-to-end test)."""

import pytest

from attacks.strength import parse_strength_curve


def test_strength_curve_points_parse_and_bad_ones_are_named():
    assert parse_strength_curve("100, 300,ALL") == [100, 300, "all"]
    assert parse_strength_curve([6, "all"]) == [6, "all"]
    assert parse_strength_curve(None) == parse_strength_curve("") == []
    with pytest.raises(ValueError, match=r"strength curve point '1' is not a pair count >= 2"):
        parse_strength_curve("1,all")
    with pytest.raises(ValueError, match="strength curve point 'many'"):
        parse_strength_curve("many")

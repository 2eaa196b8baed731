"""Attack pairs: simulated captures, PNG round trip, mismatched pairs named."""

import numpy as np
import pytest

from attacks.pairs import PairSet, load_pairs, simulate_pairs
from attacks.scenes import make_embedded_set


def test_pairs_round_trip_and_mismatch(tmp_path, small_camera):
    images = make_embedded_set(6, 32, seed=0)
    pairs = simulate_pairs(small_camera, images, tmp_path, seed=0)
    assert len(pairs.train) == 4 and len(pairs.test) == 2  # 2:1
    assert pairs.psf.shape == (3, 32, 32)
    again = simulate_pairs(small_camera, images, None, seed=0)
    assert np.array_equal(pairs.captures, again.captures)  # seeded noise
    back = load_pairs(tmp_path / "pairs")
    assert np.array_equal(back.captures[back.train], pairs.captures[pairs.train])
    assert np.array_equal(back.originals[back.test], pairs.originals[pairs.test])
    assert back.faces == [pairs.faces[i] for i in [*pairs.train, *pairs.test]]
    (tmp_path / "pairs" / "test" / "original" / "000001.png").unlink()
    with pytest.raises(ValueError, match=r"mismatched pair counts .*2 captures vs 1 originals"):
        load_pairs(tmp_path / "pairs")
    with pytest.raises(ValueError, match="mismatched pairs: 6 captures"):
        PairSet(pairs.captures, pairs.originals[:5], pairs.train, pairs.test, pairs.names)

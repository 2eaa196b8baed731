"""Fixtures: tiny embedded data sets written with captioning.synthetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from captioning.synthetic import write_dataset


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 train (3 of them restval) / 6 val / 6 test images of 32 x 32 px."""
    root = tmp_path_factory.mktemp("synthetic")
    return write_dataset(root, seed=0, train=30, val=6, test=6, size=32)


@pytest.fixture
def fresh_root(tmp_path: Path) -> Path:
    """A small data set that a test may modify (corrupt, delete, ...)."""
    return write_dataset(tmp_path / "data", seed=1, train=8, val=3, test=3, size=32)

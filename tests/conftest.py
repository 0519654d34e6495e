"""Shared pytest fixtures: paths to the real face data in ../shared/data (tests skip cleanly without it)."""
from pathlib import Path

import pytest

from tripletloss import ROOT

SHARED_DATA = ROOT.parent / "shared" / "data"


def _shared(name):
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (real face data lives in ../shared/data)")
    return path


@pytest.fixture
def orl_dir():
    """Path to ../shared/data/orl_faces (40 identities x 10 greyscale PGM faces); skips when absent."""
    return _shared("orl_faces")


@pytest.fixture
def celeba_dir():
    """Path to ../shared/data/celeba_subset (296 identities, unaligned 250x250 crops); skips when absent."""
    return _shared("celeba_subset")

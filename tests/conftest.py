"""Shared pytest fixtures: paths to the real face data in ../shared/data (tests skip cleanly without it) and the
tiny network's overrides. Helpers that tests import live in tests/helpers/."""
import pytest

from tests.helpers.shared_data import shared
from tests.helpers.tiny import tiny_overrides


@pytest.fixture(scope="session")
def orl_dir():
    """Path to ../shared/data/orl_faces (40 identities x 10 greyscale PGM faces); skips when absent."""
    return shared("orl_faces")


@pytest.fixture(scope="session")
def celeba_dir():
    """Path to ../shared/data/celeba_subset (296 identities, unaligned 250x250 crops); skips when absent."""
    return shared("celeba_subset")


@pytest.fixture
def tiny_settings(tmp_path):
    """`--set` overrides for a fast run: a tiny 32 px network (YAML written to tmp_path), small batches, no workers."""
    return tiny_overrides(tmp_path)

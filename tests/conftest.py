"""Shared pytest fixtures: paths to the real face data in ../shared/data (tests skip cleanly without it)."""
import os
from pathlib import Path

import pytest

from tripletloss import ROOT

#: ../shared/data beside the checkout, or $TRIPLETLOSS_SHARED_DATA (e.g. for a git worktree elsewhere).
SHARED_DATA = Path(os.environ.get("TRIPLETLOSS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _shared(name):
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (real face data lives in ../shared/data)")
    return path


@pytest.fixture(scope="session")
def orl_dir():
    """Path to ../shared/data/orl_faces (40 identities x 10 greyscale PGM faces); skips when absent."""
    return _shared("orl_faces")


@pytest.fixture(scope="session")
def celeba_dir():
    """Path to ../shared/data/celeba_subset (296 identities, unaligned 250x250 crops); skips when absent."""
    return _shared("celeba_subset")


TINY_BACKBONE = """
name: tiny_backbone
input: {channels: 3, size: 32}
layers:
  - {name: conv1, type: conv, num_output: 8, kernel_size: 3, stride: 2, pad: 1}
  - {name: bn1, type: batchnorm}
  - {name: relu1, type: relu}
  - {name: res2, type: residual, num_output: 16, stride: 2}
  - {name: pool2, type: pool, pool: ave, global: true}
  - {name: fc8, type: fc, num_output: 32}
  - {name: bn8, type: batchnorm}
"""
TINY_SOFTMAX = """
include: [tiny_backbone.yaml]
layers:
  - {name: fc9, type: fc, num_output: $num_classes}
outputs: {logits: fc9, embedding: bn8}
"""
#: The tiny stage-1 net with dropout, for tests where exact resume and rank agreement must cover dropout's RNG.
TINY_SOFTMAX_DROPOUT = """
include: [tiny_backbone.yaml]
layers:
  - {name: drop8, type: dropout, ratio: 0.2}
  - {name: fc9, type: fc, num_output: $num_classes}
outputs: {logits: fc9, embedding: bn8}
"""
TINY_TRIPLET = """
include: [{file: tiny_backbone.yaml, lr_mult: 0}]
layers:
  - {name: fc9_1, type: fc, num_output: $embedding_size, bottom: bn8}
  - {name: norm, type: l2norm}
outputs: {features: bn8, embedding: norm}
"""


@pytest.fixture
def tiny_settings(tmp_path):
    """`--set` overrides for a fast run: a tiny 32 px network (YAML written to tmp_path), small batches, no workers."""
    return tiny_overrides(tmp_path)


def tiny_overrides(tmp_path):
    """Write the tiny network's YAML files under `tmp_path`; return the `--set` overrides that use them."""
    nets = tmp_path / "nets"
    nets.mkdir(parents=True, exist_ok=True)
    for name, text in (("tiny_backbone", TINY_BACKBONE), ("softmax", TINY_SOFTMAX), ("triplet", TINY_TRIPLET)):
        (nets / f"{name}.yaml").write_text(text)
    return [f"softmax_net={nets / 'softmax.yaml'}", f"triplet_net={nets / 'triplet.yaml'}",
            "image_size=32", "resize_size=36", "num_workers=0", "softmax_batch_size=16",
            "identities_per_batch=4", "images_per_identity=4", "embedding_size=16", "log_every_steps=1",
            f"work_dir={tmp_path / 'runs'}"]

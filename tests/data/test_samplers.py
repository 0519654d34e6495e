"""Batch samplers: P x K structure, small identities, determinism, resume position and rank sharding."""
import numpy as np
import pytest

from tripletloss.data.samplers import PKBatches, ShuffledBatches
from tripletloss.errors import ConfigError


def labels_of(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_pk_batches_with_small_identities_terminate_and_keep_structure():
    labels = labels_of([1, 2, 3, 10, 2, 5, 1, 4])
    sampler = PKBatches(labels, identities_per_batch=3, images_per_identity=4, seed=0, batches_per_epoch=20)
    assert sampler.singletons == 2
    for batch in sampler.batches(0):
        idx = [i for i, _ in batch]
        ids = labels[idx].reshape(3, 4)
        assert (ids == ids[:, :1]).all() and len(set(ids[:, 0])) == 3
        assert all(np.bincount(labels)[i] >= 2 for i in ids[:, 0])


def test_pk_every_identity_visited_once_per_pass():
    labels = labels_of([5] * 12)
    batches = PKBatches(labels, 3, 2, seed=1, batches_per_epoch=4).batches(0)
    seen = [labels[i] for b in batches for i, _ in b[::2]]
    assert sorted(seen) == list(range(12))


def test_too_few_identities_is_an_error():
    with pytest.raises(ConfigError, match="identities"):
        PKBatches(labels_of([1, 1, 5]), 2, 2, seed=0)


def test_epochs_are_deterministic_and_differ():
    s = ShuffledBatches(100, 10, seed=3)
    assert s.batches(0) == ShuffledBatches(100, 10, seed=3).batches(0)
    assert s.batches(0) != s.batches(1)


def test_resume_position_skips_done_batches():
    s = ShuffledBatches(100, 10, seed=3)
    s.set_epoch(2, start_batch=4)
    assert list(s) == s.batches(2)[4:] and len(s) == 6


def test_ranks_split_global_batches():
    labels = labels_of([4] * 16)
    whole = PKBatches(labels, 4, 2, seed=5, world_size=2, rank=0).batches(0)
    other = PKBatches(labels, 4, 2, seed=5, world_size=2, rank=1).batches(0)
    for a, b in zip(whole, other):
        la, lb = set(labels[[i for i, _ in a]]), set(labels[[i for i, _ in b]])
        assert len(la) == 4 and len(lb) == 4 and not la & lb

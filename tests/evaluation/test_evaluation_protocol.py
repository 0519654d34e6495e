"""The LFW / facenet k-fold verification protocol against hand-computed cases."""
import numpy as np
import pytest

from tripletloss.errors import UserError
from tripletloss.evaluation import protocol


def pairs_at(distances):
    """Return unit 2-D embeddings (emb1, emb2) whose squared euclidean pair distances are `distances`."""
    angles = np.arccos(1.0 - np.asarray(distances, dtype=float) / 2.0)
    emb1 = np.tile([1.0, 0.0], (len(angles), 1))
    emb2 = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return emb1, emb2


def layout(*folds):
    """Each argument is (same_distances, diff_distances) of one fold; return emb1, emb2, issame, folds."""
    dist, same, fold = [], [], []
    for k, (s, d) in enumerate(folds):
        dist += list(s) + list(d)
        same += [True] * len(s) + [False] * len(d)
        fold += [k] * (len(s) + len(d))
    emb1, emb2 = pairs_at(dist)
    return emb1, emb2, np.array(same), np.array(fold)


def test_pair_distances_euclidean_and_cosine():
    a = np.array([[3.0, 0.0], [0.0, 2.0]])
    b = np.array([[0.0, 5.0], [0.0, -1.0]])
    assert protocol.pair_distances(a, b) == pytest.approx([2.0, 4.0])
    assert protocol.pair_distances(a, b, "cosine") == pytest.approx([1.0, 2.0])
    with pytest.raises(ValueError):
        protocol.pair_distances(a, b, "manhattan")


def test_perfectly_separable_set_scores_perfectly():
    rng = np.random.default_rng(0)
    n, dim = 200, 16
    emb1 = rng.normal(size=(n, dim))
    issame = np.arange(n) % 2 == 0
    emb2 = np.where(issame[:, None], emb1 + 0.01 * rng.normal(size=(n, dim)), rng.normal(size=(n, dim)))
    folds = np.repeat(np.arange(10), n // 10)
    for metric in protocol.METRICS:
        for subtract_mean in (False, True):
            m, heldout = protocol.evaluate_folds(emb1, emb2, issame, folds, metric, subtract_mean)
            assert m["accuracy"] == 1.0 and m["accuracy_std"] == 0.0
            assert m["auc"] == 1.0 and m["eer"] == 0.0
            assert m["val"] == 1.0 and m["far"] < 0.05      # FAR is measured on unseen pairs: not forced to 0
            assert m["pairs"] == n and m["folds"] == 10 and heldout.shape == (n,)


def test_threshold_is_never_chosen_on_its_own_test_fold():
    # Each fold alone is separable (choosing on it would give 1.0), but its threshold is wrong for the other.
    emb1, emb2, issame, folds = layout(([0.1], [0.5]), ([0.7], [0.9]))
    m, _ = protocol.evaluate_folds(emb1, emb2, issame, folds)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["threshold"] == pytest.approx((0.3 + 0.8) / 2)


def test_fold_layout_decides_the_answer():
    # Folds 0 and 1 separate at 0.5; fold 2 holds a hard "same" pair (0.85) that only it gets wrong.
    easy = ([0.1, 0.2], [0.8, 0.9])
    hard = ([0.1, 0.85], [0.8, 0.9])
    emb1, emb2, issame, folds = layout(easy, easy, hard)
    m, _ = protocol.evaluate_folds(emb1, emb2, issame, folds)
    assert m["accuracy"] == pytest.approx(np.mean([1.0, 1.0, 0.75]))
    assert m["accuracy_std"] == pytest.approx(np.std([1.0, 1.0, 0.75]))


def test_other_fold_layout_other_answer():
    emb1, emb2, issame, folds = layout(([0.1], [0.5]), ([0.7], [0.9]))
    assert list(folds) == [0, 0, 1, 1]
    # Dealt as {same 0.1, diff 0.9} and {diff 0.5, same 0.7}: thresholds 0.5 (from the second fold: accepting
    # nothing ties with accepting everything, the smaller wins) and 0.5 (midpoint of 0.1 and 0.9).
    m, _ = protocol.evaluate_folds(emb1, emb2, issame, np.array([0, 1, 1, 0]))
    assert m["accuracy"] == pytest.approx((1.0 + 0.5) / 2)


def test_best_accuracy_threshold_cuts_between_distinct_distances():
    assert protocol.best_accuracy_threshold(np.array([0.2, 0.1, 0.9]), np.array([True, True, False])) \
        == pytest.approx(0.55)
    # All "different": predicting nothing "same" is best, the threshold sits at the smallest distance.
    assert protocol.best_accuracy_threshold(np.array([0.3, 0.4]), np.array([False, False])) == 0.3
    # All "same": the threshold lies just above the largest distance, so every pair is accepted.
    t = protocol.best_accuracy_threshold(np.array([0.3, 0.4]), np.array([True, True]))
    assert 0.4 < t < 0.4 + 1e-12
    # Tied distances cannot be split: [0.5 same, 0.5 diff, 0.5 diff] -> nothing accepted (2/3 correct).
    assert protocol.best_accuracy_threshold(np.full(3, 0.5), np.array([True, False, False])) == 0.5


def test_far_threshold_accepts_ceil_target_times_different_pairs():
    diff = np.arange(1, 11) / 10.0                               # ten different pairs at 0.1 .. 1.0
    dist = np.concatenate([[0.05], diff])
    issame = np.array([True] + [False] * 10)
    for target, accepted in ((0.15, 2), (0.1, 1), (0.001, 1), (0.0, 0), (1.0, 10)):
        t = protocol.far_threshold(dist, issame, target)
        assert np.sum(diff < t) == accepted and (accepted == 0 or t - diff[accepted - 1] < 1e-12), target
    assert protocol.far_threshold(dist, issame, 0.0) == 0.1
    assert protocol.far_threshold(np.array([0.3]), np.array([True]), 0.1) == 0.0


def test_val_and_far_on_a_hand_case():
    fold_a = ([0.05, 0.3], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    fold_b = ([0.15, 0.18], [0.24, 0.26, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2])
    emb1, emb2, issame, folds = layout(fold_a, fold_b)
    m, _ = protocol.evaluate_folds(emb1, emb2, issame, folds, far_target=0.15)
    # FAR 0.15 of ten different pairs: accept the two closest, threshold just above the 2nd smallest distance.
    # Test on A, threshold from B (just above 0.26): VAL 1/2 (0.05 in, 0.3 out), FAR 2/10 (0.1, 0.2).
    # Test on B, threshold from A (just above 0.2): VAL 2/2, FAR 0/10.
    assert m["val"] == pytest.approx(0.75)
    assert m["val_std"] == pytest.approx(0.25)
    assert m["far"] == pytest.approx(0.1)


def test_equal_error_rate_on_a_hand_case():
    dist = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.8])
    issame = np.array([True, True, True, False, False, False])
    # At threshold 0.5: one of three different pairs accepted, one of three same pairs rejected.
    assert protocol.equal_error_rate(dist, issame) == pytest.approx(1 / 3)
    assert protocol.equal_error_rate(np.array([0.1, 0.9]), np.array([True, False])) == 0.0


def test_subtract_mean_uses_only_the_training_folds():
    rng = np.random.default_rng(1)
    emb1, emb2 = rng.normal(size=(6, 3)) + 2.0, rng.normal(size=(6, 3)) + 2.0
    issame = np.array([True, False] * 3)
    folds = np.array([0, 0, 1, 1, 2, 2])
    _, heldout = protocol.evaluate_folds(emb1, emb2, issame, folds, subtract_mean=True)
    a, b = protocol.l2_normalise(emb1), protocol.l2_normalise(emb2)
    for k in range(3):
        train = folds != k
        mean = np.concatenate([a[train], b[train]]).mean(axis=0)
        expected = protocol.pair_distances(a[~train] - mean, b[~train] - mean)
        assert heldout[~train] == pytest.approx(expected)
    assert heldout != pytest.approx(protocol.pair_distances(emb1, emb2))


def test_needs_two_folds():
    emb1, emb2, issame, folds = layout(([0.1], [0.9]))
    with pytest.raises(UserError, match="at least two folds"):
        protocol.evaluate_folds(emb1, emb2, issame, folds)

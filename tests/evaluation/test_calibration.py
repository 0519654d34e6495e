"""The stored threshold and what uses it: calibration from pair distances, unknown answers, clustering at it."""
import numpy as np
import pytest

from tripletloss.commands.classify import answer_line
from tripletloss.evaluation.calibration import calibration_from, same_probability, threshold_for
from tripletloss.evaluation.clusters import cluster_by_threshold
from tripletloss.evaluation.compare import distance_matrix
from tripletloss.errors import UserError


def pairs(seed=0, n=500):
    """Distances of n matched pairs (around 0.6) and n mismatched ones (around 1.6), and their labels."""
    rng = np.random.default_rng(seed)
    dist = np.concatenate([rng.normal(0.6, 0.2, n), rng.normal(1.6, 0.2, n)])
    return dist, np.arange(2 * n) < n


def test_calibration_thresholds_and_probability():
    dist, issame = pairs()
    calibration = calibration_from({"threshold": 1.1, "accuracy": 0.99}, dist, issame, far_target=0.01)
    assert calibration["threshold"] == 1.1 and calibration["pairs"] == 1000
    impostors = np.sort(dist[~issame])
    assert impostors[4] < calibration["far_threshold"] <= impostors[5]    # accepts 1 % of the 500 impostors
    p = same_probability(calibration, [0.3, 1.1, 2.0])
    assert p[0] > 0.99 and 0.3 < p[1] < 0.7 and p[2] < 0.01
    assert threshold_for(calibration, None, "m.pt") == 1.1 and threshold_for(None, 0.5, "m.pt") == 0.5
    with pytest.raises(UserError, match="m.pt has no calibrated threshold"):
        threshold_for(None, None, "m.pt")


def test_answer_is_unknown_beyond_the_threshold():
    calibration = calibration_from({"threshold": 1.1, "accuracy": 0.99}, *pairs())
    near, far = answer_line(("ann", 0.4, 0.5), 1.1, calibration), answer_line(("ann", 0.9, 1.5), 1.1, calibration)
    assert near.split("\t")[:2] == ["ann", "0.5000"] and float(near.split("\t")[2]) > 0.9
    assert far.split("\t")[:2] == ["unknown", "1.5000"] and float(far.split("\t")[2]) < 0.1


@pytest.mark.parametrize("method", ["chinese-whispers", "dbscan"])
def test_threshold_clustering_finds_the_groups_largest_first(method):
    if method == "chinese-whispers":
        pytest.importorskip("dlib")
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3]
    sizes = (3, 7, 5)
    emb = np.concatenate([c + 0.03 * rng.standard_normal((k, 8)) for c, k in zip(centres, sizes)])
    pred = cluster_by_threshold(emb, threshold=1.0, method=method)    # groups are ~2.0 apart, members ~0.01
    assert pred.tolist() == [2] * 3 + [0] * 7 + [1] * 5
    assert len(set(cluster_by_threshold(emb, threshold=1e-6, method=method))) == 15


def test_distance_matrix_is_the_pair_distance():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert np.allclose(distance_matrix(emb), [[0, 2, 2 - np.sqrt(2)], [2, 0, 2 - np.sqrt(2)],
                                              [2 - np.sqrt(2), 2 - np.sqrt(2), 0]])

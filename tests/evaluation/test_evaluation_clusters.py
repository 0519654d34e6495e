"""Cluster scores, clustering of separable embeddings, subsampling and the cluster pictures."""
import numpy as np
import pytest

from tests.helpers.evaluation import IdentityEmbedder, assert_png_drawn
from tripletloss.evaluation.clusters import (
    cluster_embeddings,
    cluster_folder,
    cluster_scores,
    purity,
    subsample,
)


def test_purity_and_nmi_hand_cases():
    assert purity([0, 0, 1, 1], [5, 5, 5, 7]) == pytest.approx(3 / 4)
    assert purity([0, 1, 2, 3], [0, 0, 0, 0]) == pytest.approx(1 / 4)
    perfect = cluster_scores([0, 0, 1, 1, 2], [2, 2, 0, 0, 1])            # cluster ids are arbitrary
    assert perfect["purity"] == 1.0 and perfect["nmi"] == pytest.approx(1.0)
    assert perfect["clusters"] == 3 and perfect["identities"] == 3 and perfect["images"] == 5
    assert cluster_scores([0, 0, 1, 1], [0, 1, 0, 1])["nmi"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_separable_embeddings_cluster_perfectly(method):
    rng = np.random.default_rng(0)
    true = np.repeat(np.arange(5), 8)
    emb = np.eye(5)[true] + 0.05 * rng.normal(size=(40, 5))
    assert purity(true, cluster_embeddings(emb, 5, method)) == 1.0
    assert len(np.unique(cluster_embeddings(emb, 2, method))) == 2


def test_subsample_keeps_first_identities_and_images():
    paths = ["a1", "a2", "a3", "b1", "b2", "c1"]
    kept = subsample(paths, [0, 0, 0, 1, 1, 2], ["a", "b", "c"], max_identities=2, max_per_identity=2)
    assert kept[0] == ["a1", "a2", "b1", "b2"] and kept[1].tolist() == [0, 0, 1, 1] and kept[2] == ["a", "b"]
    assert subsample(paths, [0, 0, 0, 1, 1, 2], ["a", "b", "c"])[0] == paths


def test_cluster_folder_writes_grids_and_tsne(orl_dir, tmp_path):
    names = sorted(p.name for p in orl_dir.iterdir() if p.is_dir())[:4]
    scores = cluster_folder(IdentityEmbedder(names), orl_dir, tmp_path, max_identities=4, max_per_identity=5)
    assert scores["purity"] == 1.0 and scores["images"] == 20 and scores["k"] == 4
    grids = sorted(tmp_path.glob("cluster_*.png"))
    assert len(grids) == 4
    for path in grids + [tmp_path / "tsne.png"]:
        assert_png_drawn(path)

"""Embedding export files and the .npz identity classifiers."""
import csv

import numpy as np
import pytest

from tripletloss.errors import UserError
from tripletloss.evaluation.classifier import (
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from tripletloss.evaluation.export import write_embeddings
from tripletloss.evaluation.protocol import l2_normalise
from tripletloss.inference import Embedder
from tripletloss.net import build_net


def blobs(n_classes=3, per_class=10, dim=8, spread=0.1, seed=0):
    """Return (embeddings, identity names) of well separated clusters around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), per_class)
    emb = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    return emb, [f"person{k}" for k in labels]


def test_write_embeddings_npy_labels_and_reps(tmp_path):
    emb = np.arange(6, dtype=np.float64).reshape(3, 2) / 7
    paths, names = ["x/a/1.jpg", "x/a/2.jpg", "x/b/1.jpg"], ["a", "a", "b"]
    written = write_embeddings(emb, paths, names, tmp_path / "out" / "emb.data", "csv")
    assert [p.name for p in written] == ["emb.data", "emb.labels.csv", "emb.reps.csv"]
    loaded = np.load(tmp_path / "out" / "emb.data")
    assert loaded.dtype == np.float32 and np.allclose(loaded, emb)
    with open(tmp_path / "out" / "emb.labels.csv") as f:
        assert list(csv.reader(f)) == [["path", "identity"]] + [list(r) for r in zip(paths, names)]
    assert np.allclose(np.loadtxt(tmp_path / "out" / "emb.reps.csv", delimiter=","), emb)
    assert len(write_embeddings(emb, paths, names, tmp_path / "e.npy")) == 2
    write_embeddings(emb, paths, names, tmp_path / "of" / "e.npy", "openface")
    assert (tmp_path / "of" / "labels.csv").read_text().splitlines() == ["1,x/a/1.jpg", "1,x/a/2.jpg", "2,x/b/1.jpg"]
    assert np.allclose(np.loadtxt(tmp_path / "of" / "reps.csv", delimiter=","), emb)


@pytest.mark.parametrize("method", ["svm", "knn"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_classifier_round_trip_predicts_identities(tmp_path, method, n_classes):
    emb, names = blobs(n_classes)
    path = save_classifier(train_classifier(emb, names, method, k=3), tmp_path / "clf.npz")
    clf = load_classifier(path)
    test_emb, test_names = blobs(n_classes, per_class=3, seed=0)
    predicted, confidence, distance = predict(clf, test_emb + 0.01)
    assert predicted == test_names
    assert all(1.0 / n_classes < c <= 1.0 for c in confidence)
    nearest = [min(np.sum((row - known) ** 2) for known, name in zip(l2_normalise(emb), names) if name == guess)
               for row, guess in zip(l2_normalise(test_emb + 0.01), predicted)]
    assert distance == pytest.approx(nearest, abs=1e-6)       # the stored embeddings are float32


def test_knn_confidence_is_the_vote_fraction():
    emb = np.array([[1, 0], [1, 0.1], [1, -0.1], [0, 1], [0.1, 1]], dtype=float)
    clf = train_classifier(emb, ["a", "a", "a", "b", "b"], "knn", k=4)
    names, conf, _ = predict(clf, np.array([[1.0, 0.05], [0.05, 1.0]]))
    assert names == ["a", "b"] and conf == pytest.approx([0.75, 0.5])   # b: 2 votes, ties with a, nearer wins


def test_loading_refuses_pickles_and_foreign_files(tmp_path):
    np.savez(tmp_path / "obj.npz", method=np.array(["svm"], dtype=object), classes=np.array(["a", "b"]))
    with pytest.raises(UserError, match="not a classifier"):
        load_classifier(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_text("hello")
    with pytest.raises(UserError, match="not a classifier"):
        load_classifier(tmp_path / "junk.npz")


def test_predict_rejects_embeddings_of_another_size():
    emb, names = blobs()
    with pytest.raises(UserError, match="dimensions"):
        predict(train_classifier(emb, names), np.ones((1, 5)))
    with pytest.raises(UserError, match="two identities"):
        train_classifier(emb[:3], names[:3])


@pytest.mark.parametrize("flip", [False, True])
def test_embedding_no_images_gives_an_empty_array(tmp_path, flip):
    (tmp_path / "net.yaml").write_text("input: {channels: 3, size: 4}\nlayers:\n  - {name: f, type: fc, num_output: 2}\n"
                                       "outputs: {embedding: f}\n")
    embedder = Embedder(build_net(tmp_path / "net.yaml"), {"size": 4, "resize": 4, "mean": [0] * 3, "std": [1] * 3})
    assert embedder.embed_paths([], flip=flip, progress=False).shape[0] == 0

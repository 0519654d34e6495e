"""Identity classifiers on embeddings (linear SVM or k-NN), stored as plain .npz arrays: loading runs no code."""
from pathlib import Path

import numpy as np
from sklearn.svm import LinearSVC

from tripletloss.errors import UserError
from tripletloss.evaluation.classifier_file import load_classifier  # noqa: F401 (part of this module's API)
from tripletloss.evaluation.protocol import l2_normalise

METHODS = ("svm", "knn")


def train_classifier(emb, identities, method="svm", k=5):
    """Fit a classifier on embeddings `emb` (N, D) named by `identities` (N strings); return its array dict.

    "svm": one-vs-rest linear SVM (sklearn LinearSVC) on L2-normalised embeddings, kept as coef (C, D) and
    intercept (C,). "knn": `k`. Every dict holds method, classes (C names), dim and the normalised training
    embeddings with their class indices (labels), from which predict measures the distance to the nearest
    image of the predicted identity.
    """
    if method not in METHODS:
        raise ValueError(f"unknown classifier {method!r} (choose from {', '.join(METHODS)})")
    classes, y = np.unique(np.asarray(identities, dtype=str), return_inverse=True)
    if len(classes) < 2:
        raise UserError("a classifier needs images of at least two identities")
    x = l2_normalise(emb)
    clf = {"method": np.array(method), "classes": classes, "dim": np.array(x.shape[1]),
           "embeddings": x.astype(np.float32), "labels": y}
    if method == "knn":
        return {**clf, "k": np.array(min(k, len(x)))}
    svm = LinearSVC(C=1.0).fit(x, y)
    coef, intercept = svm.coef_, svm.intercept_
    if len(classes) == 2:                                          # sklearn keeps one row for two classes
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return {**clf, "coef": coef, "intercept": intercept}


def save_classifier(clf, path):
    """Write a train_classifier() dict to `path` as an uncompressed .npz; return the Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:                                   # np.savez(path) would append ".npz"
        np.savez(f, **clf)
    return path


def predict(clf, emb):
    """Classify embeddings `emb` (N, D); return (names, scores, distances), lists of N strings and floats.

    svm: score is the softmax of the one-vs-rest decision values (a relative score, not a calibrated
    probability). knn: the fraction of the k nearest training embeddings voting for the winner (ties go to
    the class of the nearer neighbours). distance: squared euclidean distance to the nearest training image of
    the predicted identity (the verification protocol's distance, comparable with a calibrated threshold).
    """
    x = l2_normalise(emb)
    if x.shape[1] != int(clf["dim"]):
        raise UserError(f"embeddings have {x.shape[1]} dimensions but the classifier was trained on "
                        f"{int(clf['dim'])}: use the model it was trained with")
    if "embeddings" not in clf:
        raise UserError("this classifier file predates distances to known faces: train it again (classify train)")
    best, score = (_knn if str(clf["method"]) == "knn" else _svm)(clf, x)
    dist = _squared_distances(x, clf["embeddings"])
    dist[clf["labels"][None, :] != best[:, None]] = np.inf
    return [str(clf["classes"][b]) for b in best], [float(c) for c in score], [float(d) for d in dist.min(1)]


def _squared_distances(x, emb):
    """Return the (N, M) squared euclidean distances between rows of `x` and of `emb`, never an (N, M, D) array."""
    emb = emb.astype(np.float64)
    return np.maximum((x ** 2).sum(1)[:, None] + (emb ** 2).sum(1)[None] - 2 * x @ emb.T, 0.0)


def _svm(clf, x):
    """Return (best class index, softmax of the decision values at it) per row of `x`."""
    logits = x @ clf["coef"].T + clf["intercept"]
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    best = scores.argmax(axis=1)
    return best, scores[np.arange(len(x)), best]


def _knn(clf, x):
    """Return (winning class index, its fraction of the k nearest votes) per row; nearer neighbours break ties."""
    k, n_classes = int(clf["k"]), len(clf["classes"])
    dist = _squared_distances(x, clf["embeddings"])
    nearest = clf["labels"][np.argsort(dist, axis=1, kind="stable")[:, :k]]
    votes = np.zeros((len(x), n_classes))
    rows = np.repeat(np.arange(len(x)), k)
    np.add.at(votes, (rows, nearest.ravel()), 1.0)
    bonus = np.zeros_like(votes)                                  # < 1 vote: only decides ties
    np.add.at(bonus, (rows, nearest.ravel()), np.tile((k - np.arange(k)) / (k * k + 1), len(x)))
    best = (votes + bonus).argmax(axis=1)
    return best, votes[np.arange(len(x)), best] / k

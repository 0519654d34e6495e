"""Clustering embeddings and scoring the clusters against the true identities (the `cluster` command), or
grouping an unlabelled folder of photos at a distance threshold (`cluster --unlabelled`)."""
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.metrics import normalized_mutual_info_score

from tripletloss.data.folders import image_files, scan_folders
from tripletloss.errors import UserError
from tripletloss.evaluation.protocol import l2_normalise
from tripletloss.evaluation.views import save_cluster_grids, save_tsne

METHODS = ("kmeans", "agglomerative")
THRESHOLD_METHODS = ("chinese-whispers", "dbscan")


def cluster_embeddings(emb, k, method="kmeans", seed=0):
    """Cluster the L2-normalised rows of `emb` (N, D) into `k` groups; return (N,) int cluster ids.

    method "kmeans" (10 restarts, `seed`) or "agglomerative" (Ward linkage).
    """
    if method not in METHODS:
        raise ValueError(f"unknown clustering method {method!r} (choose from {', '.join(METHODS)})")
    x = l2_normalise(emb)
    k = max(1, min(int(k), len(x)))
    if method == "kmeans":
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x)


def purity(true, pred):
    """Return cluster purity: the fraction of items whose cluster's most common true label is their own."""
    true, pred = np.asarray(true), np.asarray(pred)
    hits = sum(np.bincount(true[pred == c]).max() for c in np.unique(pred))
    return float(hits / len(true))


def cluster_scores(true, pred):
    """Return {"purity", "nmi" (sklearn normalized_mutual_info_score), "clusters", "identities", "images"}."""
    return {
        "purity": purity(true, pred),
        "nmi": float(normalized_mutual_info_score(true, pred)),
        "clusters": int(len(np.unique(pred))),
        "identities": int(len(np.unique(true))),
        "images": int(len(true)),
    }


def subsample(paths, labels, class_names, max_identities=None, max_per_identity=None):
    """Keep the first `max_identities` identities (by name) and the first `max_per_identity` images of each.

    Takes scan_folders()'s (paths, labels, class_names); returns the same triple, labels renumbered from 0.
    """
    by_identity = defaultdict(list)
    for path, label in zip(paths, labels):
        by_identity[int(label)].append(path)
    keep = sorted(by_identity)[:max_identities]
    out_paths, out_labels = [], []
    for new, old in enumerate(keep):
        chosen = by_identity[old][:max_per_identity]
        out_paths += chosen
        out_labels += [new] * len(chosen)
    return out_paths, np.array(out_labels, dtype=int), [class_names[i] for i in keep]

def cluster_folder(embedder, data_dir, out_dir, k=None, method="kmeans", max_identities=None,
                   max_per_identity=None, progress=False):
    """Embed a dataset folder, cluster it, write views into `out_dir`; return cluster_scores() plus "k".

    k defaults to the number of identities kept. Writes cluster_NNN.png (one thumbnail grid per cluster,
    each thumbnail bordered in its identity's colour and captioned with its name) and tsne.png.
    """
    paths, labels, names = subsample(*scan_folders(data_dir), max_identities, max_per_identity)
    emb, found = embedder.embed_faces(paths, progress=progress)
    paths, labels = list(np.asarray(paths, dtype=object)[found]), labels[found]
    k = k or len(names)
    pred = cluster_embeddings(emb, k, method)
    out_dir = Path(out_dir)
    save_cluster_grids(paths, labels, names, pred, out_dir)
    save_tsne(emb, labels, names, out_dir / "tsne.png")
    return {**cluster_scores(labels, pred), "k": int(k)}


def cluster_by_threshold(emb, threshold, method="chinese-whispers"):
    """Group the L2-normalised rows of `emb` (N, D) without a cluster count; return (N,) int ids, 0 the largest.

    Faces closer than `threshold` (squared euclidean, as calibrated) are linked. "chinese-whispers": dlib's
    graph clustering on those links; "dbscan": scikit-learn's DBSCAN with min_samples 1 (the connected
    components of the links).
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"unknown method {method!r} (choose from {', '.join(THRESHOLD_METHODS)})")
    x, radius = l2_normalise(emb), float(np.sqrt(threshold))
    if method == "dbscan":
        return by_size(DBSCAN(eps=radius, min_samples=1).fit_predict(x))
    from tripletloss.prepare.landmarks import require_dlib
    dlib = require_dlib()
    return by_size(np.array(dlib.chinese_whispers_clustering([dlib.vector(row.tolist()) for row in x], radius)))


def by_size(pred):
    """Renumber cluster ids so that 0 is the largest cluster (ties: the lower old id first)."""
    ids, counts = np.unique(pred, return_counts=True)
    rank = {int(c): r for r, c in enumerate(ids[np.argsort(-counts, kind="stable")])}
    return np.array([rank[int(c)] for c in pred], dtype=int)


def cluster_unlabelled(embedder, folder, out_dir, threshold, method="chinese-whispers", progress=False):
    """Embed the images of a flat `folder`, group them at `threshold`, write cluster_NNN.png grids and
    clusters.csv (path, cluster; `no face` for photos without one) into `out_dir`; return {images, faces,
    clusters}."""
    paths = [str(p) for p in image_files(folder)] if Path(folder).is_dir() else []
    if not paths:
        raise UserError(f"--unlabelled {folder}: no images in this folder")
    emb, found = embedder.embed_faces(paths, progress=progress)
    pred = cluster_by_threshold(emb, threshold, method) if found.any() else np.zeros(0, dtype=int)
    kept = list(np.asarray(paths, dtype=object)[found])
    names = [f"cluster {c}" for c in range(len(np.unique(pred)))]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_cluster_grids(kept, pred, names, pred, out_dir)
    ids = iter(pred)
    with open(out_dir / "clusters.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "cluster")] + [(p, next(ids) if ok else "no face")
                                                          for p, ok in zip(paths, found)])
    return {"images": len(paths), "faces": int(found.sum()), "clusters": len(names)}

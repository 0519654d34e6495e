"""Same person or not: the distance matrix of a few photos and a verdict per pair at a threshold."""
import numpy as np

from tripletloss.evaluation.protocol import pair_distances


def distance_matrix(emb, metric="euclidean"):
    """Return the (N, N) distances (protocol.pair_distances' `metric`) between every two rows of `emb` (N, D)."""
    n = len(emb)
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return pair_distances(emb[rows.ravel()], emb[cols.ravel()], metric).reshape(n, n)


def format_matrix(names, dist):
    """Return the distance matrix as text lines: a numbered header, then one row per name."""
    head = " " * 6 + "".join(f"{f'[{j + 1}]':>8}" for j in range(len(names)))
    rows = [f"{f'[{i + 1}]':<6}" + "".join(f"{d:8.3f}" for d in dist[i]) + f"  {name}"
            for i, name in enumerate(names)]
    return [head] + rows


def verdict_lines(names, dist, threshold, probability=None):
    """Return `A<TAB>B<TAB>distance<TAB>same|different[<TAB>P(same)]` for every pair i < j.

    A pair is "same" when its distance is below `threshold`; `probability` maps distances to P(same) or is None.
    """
    lines = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            verdict = "same" if dist[i, j] < threshold else "different"
            extra = f"\tP(same) {float(probability(dist[i, j])):.3f}" if probability else ""
            lines.append(f"{names[i]}\t{names[j]}\t{dist[i, j]:.4f}\t{verdict}{extra}")
    return lines

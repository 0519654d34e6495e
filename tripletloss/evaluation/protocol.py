"""The LFW / facenet verification protocol on embeddings, in plain numpy (plus sklearn for the ROC).

Pairs come as two embedding arrays `emb1`, `emb2` (N, D), a boolean `issame` (N,) and an integer `folds` (N,)
giving each pair's fold (the fold layout of the pairs file, never reshuffled). For every fold the thresholds are
chosen on the other folds only and scored on the held-out fold. A pair is predicted "same" when its distance is
strictly below the threshold (facenet's `np.less(dist, threshold)`).
"""
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from tripletloss.errors import UserError

METRICS = ("euclidean", "cosine")


def l2_normalise(emb):
    """Return float64 copies of the rows of `emb` (N, D) scaled to unit length (zero rows stay zero)."""
    emb = np.asarray(emb, dtype=np.float64)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norm, 1e-12)


def pair_distances(emb1, emb2, metric="euclidean"):
    """Return the (N,) distances between rows of `emb1` and `emb2` (N, D) after L2 normalisation.

    metric "euclidean": squared euclidean distance (0..4); "cosine": 1 - cosine similarity (0..2).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown distance metric {metric!r} (choose from {', '.join(METRICS)})")
    a, b = l2_normalise(emb1), l2_normalise(emb2)
    if metric == "euclidean":
        return np.sum((a - b) ** 2, axis=1)
    return 1.0 - np.sum(a * b, axis=1)


def best_accuracy_threshold(dist, issame):
    """Return the threshold maximising the accuracy of `dist < threshold` as a "same" prediction.

    Candidates are the cuts between consecutive distinct distances (their midpoint), plus one below all of
    them and one just above all of them; ties go to the smallest threshold.
    """
    order = np.argsort(dist, kind="stable")
    d, same = np.asarray(dist)[order], np.asarray(issame, dtype=bool)[order]
    n = len(d)
    same_before = np.concatenate([[0], np.cumsum(same)])          # "same" pairs among the k closest
    diff_after = np.sum(~same) - np.concatenate([[0], np.cumsum(~same)])
    correct = same_before + diff_after                             # accuracy * n when the k closest are "same"
    cut_ok = np.ones(n + 1, dtype=bool)
    cut_ok[1:n] = d[:-1] < d[1:]
    k = int(np.flatnonzero(cut_ok)[np.argmax(correct[cut_ok])])
    if k == 0:
        return float(d[0])
    if k == n:
        return float(np.nextafter(d[-1], np.inf))
    return float((d[k - 1] + d[k]) / 2)


def accuracy_at(dist, issame, threshold):
    """Return the fraction of pairs whose prediction `dist < threshold` equals `issame`."""
    return float(np.mean((np.asarray(dist) < threshold) == np.asarray(issame, dtype=bool)))


def far_threshold(dist, issame, far_target):
    """Return the threshold at which the false-accept rate of these pairs reaches `far_target`.

    facenet's calculate_val interpolates FAR(threshold) over a threshold grid of step 0.001; FAR is a
    staircase that steps up just above each different-pair distance, so as the step shrinks that interpolation
    lands just above the k-th smallest different-pair distance, k = ceil(far_target * #different pairs).
    This is that limit, without a grid: k = 0 gives the smallest distance itself (nothing accepted).
    Returns 0.0 without different pairs.
    """
    diff = np.sort(np.asarray(dist)[~np.asarray(issame, dtype=bool)])
    if diff.size == 0:
        return 0.0
    k = min(int(np.ceil(far_target * diff.size - 1e-9)), diff.size)    # tolerance: 0.1 * 10 is 1.0000000000000002
    return float(diff[0]) if k <= 0 else float(np.nextafter(diff[k - 1], np.inf))


def val_far_at(dist, issame, threshold):
    """Return (VAL, FAR) at `threshold`: the fractions of same / different pairs with distance < threshold.

    A rate with no pairs to count is 0.0.
    """
    issame = np.asarray(issame, dtype=bool)
    accepted = np.asarray(dist) < threshold
    val = float(np.mean(accepted[issame])) if issame.any() else 0.0
    far = float(np.mean(accepted[~issame])) if (~issame).any() else 0.0
    return val, far


def equal_error_rate(dist, issame):
    """Return the equal error rate: where the false-accept and false-reject rates cross, interpolated on the ROC."""
    fpr, tpr, _ = roc_curve(np.asarray(issame, dtype=bool), -np.asarray(dist), drop_intermediate=False)
    gap = fpr - (1.0 - tpr)                                        # rises from -1 to +1
    i = int(np.argmax(gap >= 0))
    if i == 0:
        return float(fpr[0])
    alpha = -gap[i - 1] / (gap[i] - gap[i - 1])
    return float(fpr[i - 1] + alpha * (fpr[i] - fpr[i - 1]))


def _fold_distances(emb1, emb2, train, metric, subtract_mean):
    """Return the (N,) distances, after subtracting the mean embedding of the `train` pairs when asked to."""
    if not subtract_mean:
        return pair_distances(emb1, emb2, metric)
    a, b = l2_normalise(emb1), l2_normalise(emb2)
    mean = np.mean(np.concatenate([a[train], b[train]]), axis=0)
    return pair_distances(a - mean, b - mean, metric)


def evaluate_folds(emb1, emb2, issame, folds, metric="euclidean", subtract_mean=False, far_target=1e-3):
    """Run the k-fold verification protocol; return (metrics, heldout_distances).

    Takes embeddings `emb1`, `emb2` (N, D), booleans `issame` (N,), fold ids `folds` (N,) (at least two
    folds), the distance `metric` and whether to subtract the training folds' mean embedding (facenet's
    subtract_mean; the rows are L2-normalised again afterwards, otherwise the euclidean distance would not
    change). For each fold: the best-accuracy threshold and the FAR=`far_target` threshold are chosen on the
    other folds, then accuracy, VAL and FAR are measured on the fold.

    `metrics` holds accuracy, accuracy_std, val, val_std, far (mean held-out FAR), threshold (mean accuracy
    threshold), auc and eer (over every pair's held-out distance), pairs, folds and fold_accuracies ({fold id:
    held-out accuracy}). `heldout_distances` (N,) is
    each pair's distance as computed for its own fold, for ROC plots.
    """
    issame, folds = np.asarray(issame, dtype=bool), np.asarray(folds)
    fold_ids = np.unique(folds)
    if fold_ids.size < 2:
        raise UserError(f"the verification protocol needs at least two folds of pairs, got {fold_ids.size} (a "
                        "one-fold file such as LFW's pairsDevTest.txt cannot pick thresholds on held-out folds)")
    heldout = np.empty(len(issame))
    acc, thr, val, far = [], [], [], []
    for k in fold_ids:
        test = folds == k
        train = ~test
        dist = _fold_distances(emb1, emb2, train, metric, subtract_mean)
        heldout[test] = dist[test]
        t_acc = best_accuracy_threshold(dist[train], issame[train])
        acc.append(accuracy_at(dist[test], issame[test], t_acc))
        thr.append(t_acc)
        t_val = far_threshold(dist[train], issame[train], far_target)
        v, f = val_far_at(dist[test], issame[test], t_val)
        val.append(v)
        far.append(f)
    metrics = {
        "accuracy": float(np.mean(acc)), "accuracy_std": float(np.std(acc)),
        "val": float(np.mean(val)), "val_std": float(np.std(val)), "far": float(np.mean(far)),
        "auc": float(roc_auc_score(issame, -heldout)), "eer": equal_error_rate(heldout, issame),
        "threshold": float(np.mean(thr)), "pairs": int(len(issame)), "folds": int(fold_ids.size),
        "fold_accuracies": dict(zip(fold_ids.tolist(), map(float, acc))),
    }
    return metrics, heldout


def count_missing_as_wrong(metrics, folds, all_folds):
    """Return a copy of evaluate_folds' `metrics` whose accuracy counts every pair left out as wrongly classified.

    `folds` (N,) are the fold ids of the evaluated pairs, `all_folds` those of every pair of the pairs file (the
    evaluated ones plus those whose image is missing). Per fold, accuracy becomes correct / all pairs of the fold
    (a fold with no evaluated pair scores 0); accuracy and accuracy_std are recomputed over all folds. The other
    metrics stay those of the evaluated pairs.
    """
    ids, totals = np.unique(np.asarray(all_folds), return_counts=True)
    present = dict(zip(*np.unique(np.asarray(folds), return_counts=True)))
    acc = [metrics["fold_accuracies"].get(k, 0.0) * present.get(k, 0) / n for k, n in zip(ids.tolist(), totals)]
    accuracies = dict(zip(ids.tolist(), map(float, acc)))
    return dict(metrics, accuracy=float(np.mean(acc)), accuracy_std=float(np.std(acc)), fold_accuracies=accuracies)

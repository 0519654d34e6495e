"""Reference miners in vectorised torch ops (the CPU path): no Python loop over pairs, nothing of size B^3.

semihard / violating / batch_all sort each anchor's negative distances once; the candidates of a pair (a, p) are
then a contiguous run of that sorted row, found with two binary searches, and a random pick is an offset into it:
O(B^2 log B + pairs log B) in all.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from tripletloss.mining.distances import gram_to_squared
from tripletloss.mining.sampling import local_generator, sample_sorted


def _distances(x, squared):
    """(B, B) distances (diagonal not forced to 0; it is never used as a positive or a negative)."""
    d2 = gram_to_squared(x @ x.T, zero_diagonal=False)
    return d2 if squared else d2.sqrt_()


def same_label_pairs(labels, ordered):
    """Same-label pairs (a, p) in row-major order, a != p if `ordered` else a < p, in O(B log B + pairs)."""
    B = labels.numel()
    order = torch.argsort(labels, stable=True)  # identities contiguous, indices ascending inside each
    grouped = labels[order]
    first = torch.searchsorted(grouped, grouped)
    size = torch.searchsorted(grouped, grouped, right=True) - first
    where = torch.empty_like(order)
    where[order] = torch.arange(B, device=labels.device)  # position of each index in `order`
    start = first[where] if ordered else where + 1
    count = size[where] - 1 if ordered else first[where] + size[where] - start
    a = torch.repeat_interleave(torch.arange(B, device=labels.device), count)
    slot = start[a] + torch.arange(a.numel(), device=labels.device) - (count.cumsum(0) - count)[a]
    if ordered:
        slot += slot >= where[a]  # skip the anchor itself
    return a, order[slot]


def _argsort_rows(values):
    """Row-wise ascending argsort. On CPU: numpy's SIMD argsort (about 3x faster than torch.sort there), rows split
    over torch.get_num_threads() threads when there are many (numpy releases the GIL while it sorts)."""
    if values.device.type != "cpu":
        return values.argsort(dim=1)
    rows = values.numpy()
    threads = min(torch.get_num_threads(), len(rows) // 256)
    if threads <= 1:
        return torch.from_numpy(np.argsort(rows, axis=1))
    order = np.empty(rows.shape, dtype=np.int64)
    bounds = np.linspace(0, len(rows), threads + 1).astype(int)

    def sort(i):
        order[bounds[i]:bounds[i + 1]] = np.argsort(rows[bounds[i]:bounds[i + 1]], axis=1)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(sort, range(threads)))
    return torch.from_numpy(order)


def _rowwise_searchsorted(sorted_rows, rows, values, right):
    """searchsorted(sorted_rows[rows[i]], values[i]) for every i; `rows` must be non-decreasing.

    Queries are laid out in a padded (B, max queries per row) matrix so a single batched searchsorted answers all.
    """
    counts = torch.bincount(rows, minlength=sorted_rows.shape[0])
    slot = torch.arange(rows.numel(), device=rows.device) - (counts.cumsum(0) - counts)[rows]
    padded = values.new_zeros(sorted_rows.shape[0], int(counts.max()) if rows.numel() else 0)
    padded[rows, slot] = values
    return torch.searchsorted(sorted_rows, padded, right=right)[rows, slot]


def _candidate_ranges(x, labels, margin, squared, ordered, semihard):
    """Pairs (a, p), the [lo, hi) run of a's ascending negatives (column `order`) that are candidates:
    d_ap < d_an (semihard only) and d_an < d_ap + margin."""
    dist = _distances(x, squared)
    a, p = same_label_pairs(labels, ordered)
    d_ap = dist[a, p]
    if ordered:  # a != p covers every same-label entry off the diagonal
        dist[a, p] = float("inf")
    else:
        dist[torch.cat([a, p]), torch.cat([p, a])] = float("inf")
    dist.fill_diagonal_(float("inf"))
    order = _argsort_rows(dist)
    values = dist.gather(1, order)
    hi = _rowwise_searchsorted(values, a, d_ap + margin, right=False)
    lo = _rowwise_searchsorted(values, a, d_ap, right=True) if semihard else torch.zeros_like(hi)
    return a, p, lo, hi.clamp_min(lo), order


def _one_negative_per_pair(x, labels, margin, seed, squared, semihard):
    """semihard / violating: for each pair a < p with candidates, one candidate chosen uniformly at random."""
    a, p, lo, hi, order = _candidate_ranges(x, labels, margin, squared, ordered=False, semihard=semihard)
    u = torch.rand(a.numel(), generator=local_generator(seed, x.device), dtype=torch.float64, device=x.device)
    count = hi - lo
    keep = count > 0
    a, p, lo, count, u = a[keep], p[keep], lo[keep], count[keep], u[keep]
    pick = lo + torch.minimum((u * count).long(), count - 1)
    return a, p, order[a, pick]


def semihard(x, labels, margin, seed, squared):
    """FaceNet semi-hard: pairs a < p, negative uniform among n with d_ap < d_an < d_ap + margin."""
    return _one_negative_per_pair(x, labels, margin, seed, squared, semihard=True)


def violating(x, labels, margin, seed, squared):
    """Margin-violating: pairs a < p, negative uniform among n with d_an < d_ap + margin."""
    return _one_negative_per_pair(x, labels, margin, seed, squared, semihard=False)


def batch_hard(x, labels, margin, seed, squared):
    """Batch-hard: each anchor with a positive and a negative, its farthest positive and nearest negative.

    Ties go to the lowest index. `margin` and `seed` are unused (the signature is shared by all strategies).
    """
    dist = _distances(x, squared)
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    positive = same & ~torch.eye(same.shape[0], dtype=torch.bool, device=same.device)
    hardest_p = dist.masked_fill(~positive, -float("inf")).argmax(dim=1)
    hardest_n = dist.masked_fill(same, float("inf")).argmin(dim=1)
    a = (positive.any(dim=1) & ~same.all(dim=1)).nonzero(as_tuple=True)[0]
    return a, hardest_p[a], hardest_n[a]


def batch_all(x, labels, margin, seed, squared, max_triplets=None):
    """Batch-all: every (a, p, n), a != p ordered, with d_an < d_ap + margin; at most `max_triplets`, uniformly.

    Triplets come grouped by (a, p) in row-major order; within a pair, negatives by increasing distance.
    """
    a, p, _, count, order = _candidate_ranges(x, labels, margin, squared, ordered=True, semihard=False)
    ends = count.cumsum(0)
    total = int(ends[-1]) if ends.numel() else 0
    flat = sample_sorted(total, max_triplets, local_generator(seed, x.device), x.device)
    pair = torch.searchsorted(ends, flat, right=True)
    rank = flat - (ends - count)[pair]
    return a[pair], p[pair], order[a[pair], rank]

"""Reference miners in vectorised torch ops (the CPU path): no Python loop over pairs, nothing of size B^3.

semihard / violating / batch_all sort each anchor's negative distances once; the candidates of a pair (a, p) are
then a contiguous run of that sorted row, found with two binary searches, and a random pick is an offset into it.
"""
import torch

from tripletloss.mining.distances import gram_to_squared, safe_sqrt
from tripletloss.mining.sampling import local_generator, sample_sorted


def _distances(x, squared):
    d2 = gram_to_squared(x @ x.T)
    return d2 if squared else safe_sqrt(d2)


def _sorted_negatives(dist, same):
    """Each row of `dist` sorted ascending with same-label entries set to +inf: (values, column order)."""
    return dist.masked_fill(same, float("inf")).sort(dim=1)


def _rowwise_searchsorted(sorted_rows, rows, values, right):
    """searchsorted(sorted_rows[rows[i]], values[i]) for every i; `rows` must be non-decreasing.

    Queries are laid out in a padded (B, max queries per row) matrix so a single batched searchsorted answers all.
    """
    counts = torch.bincount(rows, minlength=sorted_rows.shape[0])
    slot = torch.arange(rows.numel(), device=rows.device) - (counts.cumsum(0) - counts)[rows]
    padded = values.new_zeros(sorted_rows.shape[0], int(counts.max()) if rows.numel() else 0)
    padded[rows, slot] = values
    return torch.searchsorted(sorted_rows, padded, right=right)[rows, slot]


def _pairs(same, ordered):
    """Same-label pairs in row-major order: (a, p) with a != p if `ordered`, else a < p."""
    index = torch.arange(same.shape[0], device=same.device)
    keep = index.unsqueeze(1) != index.unsqueeze(0) if ordered else index.unsqueeze(1) < index.unsqueeze(0)
    return (same & keep).nonzero(as_tuple=True)


def _candidate_ranges(dist, same, margin, ordered, semihard):
    """Pairs (a, p) and the [lo, hi) run of a's sorted negatives with d_ap < d_an (semihard) and d_an < d_ap + m."""
    a, p = _pairs(same, ordered)
    values, order = _sorted_negatives(dist, same)
    d_ap = dist[a, p]
    hi = _rowwise_searchsorted(values, a, d_ap + margin, right=False)
    lo = _rowwise_searchsorted(values, a, d_ap, right=True) if semihard else torch.zeros_like(hi)
    return a, p, lo, hi.clamp_min(lo), order


def _one_negative_per_pair(x, labels, margin, seed, squared, semihard):
    """semihard / violating: for each pair a < p with candidates, one candidate chosen uniformly at random."""
    dist = _distances(x, squared)
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    a, p, lo, hi, order = _candidate_ranges(dist, same, margin, ordered=False, semihard=semihard)
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
    dist = _distances(x, squared)
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    a, p, _, count, order = _candidate_ranges(dist, same, margin, ordered=True, semihard=False)
    ends = count.cumsum(0)
    total = int(ends[-1]) if ends.numel() else 0
    flat = sample_sorted(total, max_triplets, local_generator(seed, x.device), x.device)
    pair = torch.searchsorted(ends, flat, right=True)
    rank = flat - (ends - count)[pair]
    return a[pair], p[pair], order[a[pair], rank]

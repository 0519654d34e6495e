"""Triplet selection in vectorised torch ops: the reference implementation and the CPU path.

Nothing here loops over pairs in Python or builds a B^3 tensor. Each anchor's negatives are sorted by distance
once (O(B^2 log B)); a pair's candidate negatives are then one contiguous run of that sorted row, found with
searchsorted, so counting, random choice and batch-all enumeration all stay O(B^2 + output).
"""
import torch

from tripletloss.mining.distances import pairwise_distances
from tripletloss.mining.rng import draw_seed, pair_random, sample_without_replacement, uniform_index


def _sorted_negatives(d, same):
    """Return (values, columns): each row's distances sorted ascending with same-label entries as +inf last."""
    return d.masked_fill(same, float("inf")).sort(dim=1, stable=True)


def _candidate_runs(d, same, margin, lower_bound):
    """Return (sorted columns, start, stop) with (B, B) start/stop: the run of negatives n of anchor a satisfying
    d_an < d_ap + margin, and d_an > d_ap too when lower_bound (semi-hard), for every (a, p)."""
    values, columns = _sorted_negatives(d, same)
    stop = torch.searchsorted(values, d + margin, right=False)
    start = torch.searchsorted(values, d, right=True) if lower_bound else torch.zeros_like(stop)
    return columns, start, torch.maximum(start, stop)


def _one_per_pair(d, labels, margin, lower_bound, generator):
    """Semihard / violating: for each same-label pair i<j, one uniformly random candidate negative."""
    same = labels[:, None] == labels[None, :]
    columns, start, stop = _candidate_runs(d, same, margin, lower_bound)
    a, p = torch.triu(same, diagonal=1).nonzero(as_tuple=True)
    count = stop[a, p] - start[a, p]
    keep = count > 0
    a, p, count = a[keep], p[keep], count[keep]
    bits = pair_random(draw_seed(generator), a, p)
    n = columns[a, start[a, p] + uniform_index(bits, count)]
    return a, p, n


def _batch_all(d, labels, margin, generator, max_triplets):
    """Every (a, p, n) over ordered same-label pairs a != p with d_an < d_ap + margin, optionally capped at random."""
    same = labels[:, None] == labels[None, :]
    columns, _, stop = _candidate_runs(d, same, margin, lower_bound=False)
    pair_mask = same & ~torch.eye(len(labels), dtype=torch.bool, device=d.device)
    a, p = pair_mask.nonzero(as_tuple=True)
    count = stop[a, p]
    ends = count.cumsum(0)
    total = int(ends[-1]) if len(ends) else 0
    if max_triplets is not None and total > max_triplets:
        chosen = sample_without_replacement(total, max_triplets, generator, d.device)
    else:
        chosen = torch.arange(total, device=d.device)
    pair = torch.searchsorted(ends, chosen, right=True)
    rank = chosen - (ends[pair] - count[pair])
    return a[pair], p[pair], columns[a[pair], rank]


def _batch_hard(d, labels):
    """For each anchor with a positive and a negative: its farthest positive and nearest negative (first on ties)."""
    same = labels[:, None] == labels[None, :]
    pos_mask = same & ~torch.eye(len(labels), dtype=torch.bool, device=d.device)
    keep = pos_mask.any(dim=1) & (~same).any(dim=1)
    p = d.masked_fill(~pos_mask, float("-inf")).argmax(dim=1)
    n = d.masked_fill(same, float("inf")).argmin(dim=1)
    a = keep.nonzero(as_tuple=True)[0]
    return a, p[a], n[a]


def select(embeddings, labels, strategy, margin, generator=None, squared=True, max_triplets=None):
    """Return (anchor, positive, negative) int64 tensors for `strategy`; see tripletloss.mining.select_triplets."""
    with torch.no_grad():
        d = pairwise_distances(embeddings.detach(), squared=squared)
        if strategy == "semihard":
            return _one_per_pair(d, labels, margin, True, generator)
        if strategy == "violating":
            return _one_per_pair(d, labels, margin, False, generator)
        if strategy == "batch_all":
            return _batch_all(d, labels, margin, generator, max_triplets)
        return _batch_hard(d, labels)

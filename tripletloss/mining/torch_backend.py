"""Reference miners in vectorised torch ops (the CPU path): no Python loop over pairs, nothing of size B^3.

semihard, violating and batch_all start from the (B, B) distance matrix with +inf wherever the column shares the
row's label, so a candidate test "lo < d_an < hi" needs no label mask.
semihard / violating use rejection sampling: each pair draws columns of its anchor's row uniformly (in blocks of 1,
2, 4, ... draws per tensor op) and keeps the first candidate, which settles most pairs in O(pairs) work; the few left
are scanned over their anchor's row, which finds their candidates or proves there are none. Either way the kept
negative is uniform among the pair's candidates, and no row is sorted.
batch_all sorts each anchor's negative distances once; the candidates of a pair (a, p) are then a prefix of that
sorted row, found with a binary search, and a random pick is an offset into it: O(B^2 log B + pairs log B).
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from tripletloss.mining.distances import gram_to_squared
from tripletloss.mining.sampling import local_generator, sample_in_groups

#: Uniform draws per pair before the exhaustive scan takes over (semihard, violating).
REJECTION_ROUNDS = 64
#: Pairs scanned at once by the exhaustive fallback (bounds its memory to FALLBACK_CHUNK x B).
FALLBACK_CHUNK = 4096


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


def _negative_distances(x, labels, squared, ordered):
    """Distances with +inf wherever the column has the row's label (diagonal included), and the same-label pairs.

    Returns (dist, a, p, d_ap): pairs in row-major order, a != p if `ordered` else a < p, with their distances.
    """
    dist = _distances(x, squared)
    a, p = same_label_pairs(labels, ordered)
    d_ap = dist[a, p]
    dist[a, p] = float("inf")
    dist[p, a] = float("inf")
    dist.fill_diagonal_(float("inf"))
    return dist, a, p, d_ap


def _violation_ranges(x, labels, margin, squared):
    """Ordered pairs (a, p), a != p, and how many of a's ascending negatives (column `order`) are candidates
    (d_an < d_ap + margin): they are the first `count` of the row. Returns (a, p, count, order)."""
    dist, a, p, d_ap = _negative_distances(x, labels, squared, ordered=True)
    order = _argsort_rows(dist)
    count = _rowwise_searchsorted(dist.gather(1, order), a, d_ap + margin, right=False)
    return a, p, count, order


def _uniform_rank(count, generator):
    """Uniform integers in [0, count) (count >= 1, any shape), drawn from `generator`."""
    u = torch.rand(count.shape, generator=generator, dtype=torch.float64, device=count.device)
    return torch.minimum((u * count).long(), count - 1)


def _propose(dist, a, lo, hi, generator):
    """Rejection sampling: every pair draws columns of its anchor's row uniformly (REJECTION_ROUNDS at most, in
    blocks of 1, 2, 4, ...) and keeps the first with lo < d_an < hi (same-label columns are +inf: never kept).
    Returns n: each pair's candidate, or -1 where none was met."""
    B = dist.shape[1]
    flat = dist.view(-1)
    n = torch.full_like(a, -1)
    pending, start, window = torch.arange(a.numel(), device=a.device), a * B, torch.stack([lo, hi], dim=1)
    drawn, block = 0, 1
    while pending.numel() and drawn < REJECTION_ROUNDS:
        block = min(block, REJECTION_ROUNDS - drawn)
        proposal = torch.randint(B, (pending.numel(), block), generator=generator, device=a.device)
        d_an = flat.index_select(0, (start.unsqueeze(1) + proposal).view(-1)).view(-1, block)
        hit = (d_an > window[:, :1]) & (d_an < window[:, 1:])
        first = hit.to(torch.uint8).argmax(dim=1, keepdim=True)  # the first hit, or column 0 when none
        met = hit.gather(1, first).squeeze(1)
        n[pending] = torch.where(met, proposal.gather(1, first).squeeze(1), -1)
        left = (~met).nonzero(as_tuple=True)[0]
        pending, start, window = pending[left], start[left], window[left]  # compact: only unsettled pairs go on
        drawn, block = drawn + block, 2 * block
    return n


def _exhaustive(dist, a, lo, hi, generator):
    """For each pair, scan its anchor's row: n uniform among all n with lo < d_an < hi, or -1 where there is none."""
    n = torch.full_like(a, -1)
    for chunk in torch.arange(a.numel(), device=a.device).split(FALLBACK_CHUNK):
        rows = dist[a[chunk]]
        pair, col = ((rows > lo[chunk, None]) & (rows < hi[chunk, None])).nonzero(as_tuple=True)
        count = torch.bincount(pair, minlength=chunk.numel())
        hit = count > 0
        pick = (count.cumsum(0) - count)[hit] + _uniform_rank(count[hit], generator)
        n[chunk[hit]] = col[pick]
    return n


def _one_negative_per_pair(x, labels, margin, seed, squared, semihard):
    """semihard / violating: for each pair a < p with candidates, one candidate chosen uniformly at random."""
    dist, a, p, d_ap = _negative_distances(x, labels, squared, ordered=False)
    lo = d_ap if semihard else torch.full_like(d_ap, -float("inf"))
    hi = d_ap + margin
    keep = (dist.amin(dim=1)[a] < hi).nonzero(as_tuple=True)[0]  # a pair failing this has no candidate
    a, p, lo, hi = a[keep], p[keep], lo[keep], hi[keep]
    generator = local_generator(seed, x.device)
    n = _propose(dist, a, lo, hi, generator)
    rest = (n < 0).nonzero(as_tuple=True)[0]
    n[rest] = _exhaustive(dist, a[rest], lo[rest], hi[rest], generator)
    found = (n >= 0).nonzero(as_tuple=True)[0]
    return a[found], p[found], n[found]


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
    a, p, count, order = _violation_ranges(x, labels, margin, squared)
    pair, rank = sample_in_groups(count, count.cumsum(0), max_triplets, seed, x.device)
    return a[pair], p[pair], order[a[pair], rank]


def pinguo_layout(labels):
    """T of a batch laid out as pinguo's data layer does: [anchor x T, T positives, T negatives] by label.

    Raises ValueError when `labels` do not have that layout (selection "pinguo" needs its own batch sampler).
    """
    t = labels.numel() // 3
    anchor = labels[:1]
    if labels.numel() != 3 * t or t == 0 or not (labels[:2 * t] == anchor).all() or (labels[2 * t:] == anchor).any():
        raise ValueError("selection 'pinguo' needs batches of 3T images laid out [anchor x T, T positives, "
                         "T negatives] (pinguo's data layer: the pinguo batch sampler)")
    return t


def pinguo(x, labels, margin, seed, squared):
    """pinguo's select layer: triplet i = (anchor copy i, i-th farthest positive, i-th farthest negative).

    Positives and negatives are sorted by their distance to the first anchor copy, descending; ties keep batch
    order (Python's stable sorted(..., reverse=True)). Distances are those of the differences, as its layer
    computes them. `margin` and `seed` are unused. The pairing (hardest positive with easiest negative) is
    pinguo's; which of these triplets get a gradient is decided by tripletloss.losses.pinguo_loss.
    """
    t = pinguo_layout(labels)
    d = (x[t:] - x[0]).pow(2).sum(dim=1)
    d = d if squared else d.sqrt()
    farthest = lambda part: torch.sort(part, descending=True, stable=True).indices  # noqa: E731
    return torch.arange(t, device=x.device), farthest(d[:t]) + t, farthest(d[t:]) + 2 * t

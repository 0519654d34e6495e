"""Shared by the mining tests: label layouts, random cases, float64 brute-force rules, a uniformity check."""
import itertools
import math

import numpy as np
import scipy.stats
import torch

from tripletloss.mining import select_triplets


def layout_labels(layout, gen):
    """Label layouts: grouped identities, random ones with singletons, one identity, no pairs, tiny batches."""
    if layout == "grouped":
        return torch.arange(6).repeat_interleave(5)
    if layout == "random":
        return torch.cat([torch.randint(0, 6, (22,), generator=gen), torch.tensor([40, 41, 42])])
    if layout == "one_identity":
        return torch.zeros(12, dtype=torch.long)
    if layout == "all_distinct":
        return torch.arange(9)
    return torch.tensor([7] * int(layout == "single"), dtype=torch.long)  # "single": B=1, "empty": B=0


LAYOUTS = ["grouped", "random", "one_identity", "all_distinct", "single", "empty"]


def case(layout, dim, seed, dtype=torch.float64):
    """(x, labels) for `layout`: L2-normalised Gaussian rows drawn in float64, returned in `dtype`."""
    gen = torch.Generator().manual_seed(seed)
    labels = layout_labels(layout, gen)
    x = torch.nn.functional.normalize(torch.randn(labels.numel(), dim, generator=gen, dtype=torch.float64), dim=1)
    return x.to(dtype), labels


def brute_distances(x, squared=True):
    """(B, B) float64 distances by an explicit loop over pairs of rows."""
    rows = x.double().numpy()
    d = np.zeros((len(rows), len(rows)))
    for i, j in itertools.product(range(len(rows)), repeat=2):
        d[i, j] = np.sum((rows[i] - rows[j]) ** 2)
    return d if squared else np.sqrt(d)


def brute_candidates(d, labels, a, p, margin, semihard, tol):
    """Negatives of pair (a, p) satisfying the rule with `tol` to spare (strict) and within `tol` of it (loose)."""
    lo = d[a, p] if semihard else -math.inf
    hi = d[a, p] + margin
    negatives = [n for n in range(len(labels)) if labels[n] != labels[a]]
    strict = {n for n in negatives if lo + tol < d[a, n] < hi - tol}
    loose = {n for n in negatives if lo - tol < d[a, n] < hi + tol}
    return strict, loose


def check_pair_strategy(x, labels, strategy, margin, squared, tol, **kw):
    """semihard / violating: every triplet obeys the rule; exactly the pairs with a candidate, once, row-major."""
    a, p, n = select_triplets(x, labels, strategy, margin=margin, squared=squared, backend="torch", **kw)
    d, lab = brute_distances(x, squared), labels.tolist()
    semihard = strategy == "semihard"
    got = list(zip(a.tolist(), p.tolist()))
    assert got == sorted(set(got)), "pairs must be unique and in row-major order"
    must, may = set(), set()
    for i, j in itertools.combinations(range(len(lab)), 2):
        if lab[i] == lab[j]:
            strict, loose = brute_candidates(d, lab, i, j, margin, semihard, tol)
            must |= {(i, j)} if strict else set()
            may |= {(i, j)} if loose else set()
    assert must <= set(got) <= may
    for (i, j), k in zip(got, n.tolist()):
        assert k in brute_candidates(d, lab, i, j, margin, semihard, tol)[1]
    return a, p, n


def one_pair_with_five_candidates():
    """1-D embeddings: pair (0, 1) has d_ap = 1; negatives 2..6 lie in (1, 1.5), negatives 7..9 outside."""
    pos = [0.0, 1.0, 1.05, 1.1, 1.15, -1.08, -1.2, 0.5, 1.3, -2.0]
    labels = torch.tensor([0, 0] + list(range(1, 9)))
    return torch.tensor(pos, dtype=torch.float64).unsqueeze(1), labels


def assert_uniform(counts):
    """Chi-square test that the values of `counts` (category -> count) are draws of one uniform distribution."""
    assert scipy.stats.chisquare(list(counts.values())).pvalue > 1e-3, counts

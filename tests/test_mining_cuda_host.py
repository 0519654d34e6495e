"""The cuda backend's host side (launch arguments, output layout, compaction, batch-all bookkeeping) on the CPU.

Each kernel of kernels/mining.cu is replaced by a plain-Python emulation of the contract its comment states, and
cuda_backend's strategies are checked against the torch backend (both see bit-identical distances from the same
Gram matrix). The kernels themselves run only on a GPU (tests/test_mining_cuda.py).
"""
from unittest import mock

import pytest
import torch

from tests.test_mining import LAYOUTS, _case
from tripletloss.mining import cuda_backend, torch_backend

MASK64 = (1 << 64) - 1
NONEMPTY = [layout for layout in LAYOUTS if layout != "empty"]  # select_triplets answers B = 0 before any backend


def _mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def _uniform_below(seed, counter, n):
    return (_mix64(int(seed) ^ _mix64(counter)) * n) >> 64


def _distances(gram, sq, squared):
    d = torch.sub(sq.unsqueeze(1) + sq.unsqueeze(0), gram, alpha=2).clamp_min(0)
    return d if squared else d.sqrt()


def _candidates(d, labels, a, lo, hi):
    return [n for n in range(len(labels)) if labels[n] != labels[a] and lo < d[a, n] < hi]


def _hi(d, a, p, margin):
    return (d[a, p] + torch.tensor(float(margin), dtype=torch.float32)).item()


def _pairs(labels, ordered):
    b = len(labels)
    return [(a, p) for a in range(b) for p in range(b) if labels[a] == labels[p] and (a != p if ordered else a < p)]


def pair_negatives(gram, sq, labels, b, margin, semihard, squared, seed, out):
    d = _distances(gram, sq, squared)
    out.fill_(-1)
    for a, p in _pairs(labels, ordered=False):
        cands = _candidates(d, labels, a, d[a, p].item() if semihard else -float("inf"), _hi(d, a, p, margin))
        if cands:
            out[a, p] = cands[_uniform_below(seed, a * int(b) + p, len(cands))]


def count_violations(gram, sq, labels, b, margin, squared, counts):
    d = _distances(gram, sq, squared)
    counts.zero_()
    for a, p in _pairs(labels, ordered=True):
        counts[a, p] = len(_candidates(d, labels, a, -float("inf"), _hi(d, a, p, margin)))


def write_violations(gram, sq, labels, b, margin, squared, starts, out_a, out_p, out_n):
    d = _distances(gram, sq, squared)
    for a, p in _pairs(labels, ordered=True):
        at = int(starts[a * int(b) + p])
        for k, n in enumerate(_candidates(d, labels, a, -float("inf"), _hi(d, a, p, margin))):
            out_a[at + k], out_p[at + k], out_n[at + k] = a, p, n


def kth_violations(gram, sq, labels, b, margin, squared, anchor, positive, rank, items, out_n):
    d = _distances(gram, sq, squared)
    for i in range(int(items)):
        a, p = int(anchor[i]), int(positive[i])
        out_n[i] = _candidates(d, labels, a, -float("inf"), _hi(d, a, p, margin))[int(rank[i])]


def batch_hard(gram, sq, labels, b, squared, hardest_p, hardest_n):
    d = _distances(gram, sq, squared)
    for a in range(int(b)):
        pos = [(-d[a, j].item(), j) for j in range(int(b)) if j != a and labels[j] == labels[a]]
        neg = [(d[a, j].item(), j) for j in range(int(b)) if labels[j] != labels[a]]
        hardest_p[a] = min(pos)[1] if pos else -1
        hardest_n[a] = min(neg)[1] if neg else -1


EMULATED = {f.__name__: f for f in (pair_negatives, count_violations, write_violations, kth_violations, batch_hard)}


def _emulated_launch(name, device, rows, shared_bytes, *args):
    if rows:
        EMULATED[name](*args)


def _run(strategy, x, labels, squared, **kwargs):
    with mock.patch.object(cuda_backend, "_launch", _emulated_launch):
        return getattr(cuda_backend, strategy)(x.float(), labels, 0.3, 7, squared, **kwargs)


def test_every_kernel_is_emulated():
    source = cuda_backend.KERNEL_SOURCE.read_text()
    assert {name for name in EMULATED} == {line.split("(")[0].split()[-1] for line in source.splitlines()
                                          if line.startswith('extern "C" __global__')}


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("layout", NONEMPTY)
@pytest.mark.parametrize("strategy", ["semihard", "violating"])
def test_one_negative_per_pair_host_side(strategy, layout, squared):
    x, labels = _case(layout, 3, seed=2)
    a, p, n = _run(strategy, x, labels, squared)
    ta, tp, _ = getattr(torch_backend, strategy)(x.float(), labels, 0.3, 7, squared)
    assert list(zip(a.tolist(), p.tolist())) == list(zip(ta.tolist(), tp.tolist()))  # row-major, same pairs
    d = _distances(*_gram(x), squared)
    for i, j, k in zip(a.tolist(), p.tolist(), n.tolist()):
        assert k in _candidates(d, labels, i, d[i, j].item() if strategy == "semihard" else -float("inf"),
                                _hi(d, i, j, 0.3))


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("layout", NONEMPTY)
def test_batch_hard_host_side(layout, squared):
    x, labels = _case(layout, 3, seed=3)
    got = _run("batch_hard", x, labels, squared)
    want = torch_backend.batch_hard(x.float(), labels, 0.3, 7, squared)
    assert all(torch.equal(u, v) for u, v in zip(got, want))


@pytest.mark.parametrize("cap", [None, 0, 7, 10**6])
@pytest.mark.parametrize("layout", NONEMPTY)
def test_batch_all_host_side(layout, cap):
    x, labels = _case(layout, 3, seed=4)
    got = _run("batch_all", x, labels, True, max_triplets=cap)
    want = torch_backend.batch_all(x.float(), labels, 0.3, 7, True, max_triplets=cap)
    # same seed, same pair counts in the same row-major order: the same (a, p) draws; n is the same rank among
    # the pair's candidates, counted by column here and by distance there
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    everything = set(zip(*(t.tolist() for t in torch_backend.batch_all(x.float(), labels, 0.3, 7, True))))
    triplets = list(zip(*(t.tolist() for t in got)))
    assert len(set(triplets)) == len(triplets) and set(triplets) <= everything
    if cap is None or cap >= len(everything):
        assert set(triplets) == everything


def _gram(x):
    x = x.float()
    gram = x @ x.T
    return gram, gram.diagonal()

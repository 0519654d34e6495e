"""tripletloss.mining on CPU: pairwise distances and every strategy against float64 brute-force loops."""
import itertools
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.stats
import torch

from tests.helpers.mining import (
    LAYOUTS,
    assert_uniform,
    brute_candidates,
    brute_distances,
    case,
    check_pair_strategy,
    one_pair_with_five_candidates,
)
from tripletloss import ROOT
from tripletloss.errors import UserError
from tripletloss.mining import (
    BACKENDS,
    STRATEGIES,
    cuda_backend,
    pairwise_distances,
    select_triplets,
    torch_backend,
)
from tripletloss.mining import select as select_module


def _as_lists(triplets):
    return [t.tolist() for t in triplets]


@pytest.mark.parametrize("dim", [2, 16])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("squared", [True, False])
def test_pairwise_distances_match_brute_force(layout, dim, squared):
    for dtype, atol in [(torch.float64, 1e-10), (torch.float32, 2e-5)]:
        x, _ = case(layout, dim, seed=1, dtype=dtype)
        d = pairwise_distances(x, squared=squared)
        assert d.dtype == dtype and d.shape == (len(x), len(x))
        assert torch.all(d.diagonal() == 0) and torch.all(d >= 0) and not torch.isnan(d).any()
        # the Gram-matrix formula loses ~eps absolute in d^2, hence ~sqrt(eps) in d near 0
        np.testing.assert_allclose(d.double().numpy(), brute_distances(x, squared), atol=atol if squared else atol**0.5)


@pytest.mark.parametrize("squared", [True, False])
def test_pairwise_distances_gradient_finite_for_duplicate_rows(squared):
    x = torch.randn(6, 4, dtype=torch.float64)
    x = torch.cat([x, x[:3], x[:1]]).requires_grad_(True)
    pairwise_distances(x, squared=squared).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("squared", [True, False])
def test_pairwise_distances_gradient_is_correct(squared):
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: pairwise_distances(t, squared=squared), (x,))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("strategy", ["semihard", "violating"])
def test_pair_strategies_match_brute_force(strategy, layout, seed):
    for dim, margin, squared in [(2, 0.3, True), (8, 0.2, False)]:
        x, labels = case(layout, dim, seed)
        check_pair_strategy(x, labels, strategy, margin, squared, tol=1e-9)
        check_pair_strategy(x.float(), labels, strategy, margin, squared, tol=1e-5)


@pytest.mark.parametrize("strategy", ["semihard", "violating", "batch_hard", "batch_all"])
def test_integer_embeddings_have_exact_ties_on_boundaries(strategy):
    """Small-integer coordinates give exact float32 distances and many ties on the strict boundaries."""
    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 5, (30,), generator=gen)
    x = torch.randint(-2, 3, (30, 3), generator=gen).float()
    if strategy in ("semihard", "violating"):
        check_pair_strategy(x, labels, strategy, margin=3.0, squared=True, tol=0)
    elif strategy == "batch_hard":
        check_batch_hard(x, labels, squared=True, tol=0)
    else:
        check_batch_all(x, labels, margin=3.0, squared=True, tol=0)


def check_batch_hard(x, labels, squared, tol):
    """Same anchors as a brute-force loop, farthest positive and nearest negative (lowest index on exact ties)."""
    a, p, n = select_triplets(x, labels, "batch_hard", squared=squared, backend="torch")
    d, lab = brute_distances(x, squared), labels.tolist()
    expected = []
    for i in range(len(lab)):
        pos = [j for j in range(len(lab)) if j != i and lab[j] == lab[i]]
        neg = [j for j in range(len(lab)) if lab[j] != lab[i]]
        if pos and neg:
            far = max(pos, key=lambda j: (d[i, j], -j))
            near = min(neg, key=lambda j: (d[i, j], j))
            expected.append((i, far, near))
    assert a.tolist() == [e[0] for e in expected]
    for (i, far, near), pi, ni in zip(expected, p.tolist(), n.tolist()):
        assert abs(d[i, pi] - d[i, far]) <= tol and abs(d[i, ni] - d[i, near]) <= tol
        assert lab[pi] == lab[i] and pi != i and lab[ni] != lab[i]
        if tol == 0:
            assert (pi, ni) == (far, near)


def check_batch_all(x, labels, margin, squared, tol, max_triplets=None, generator=None):
    """All ordered-pair triplets with d_an < d_ap + margin (up to tol), unique, grouped by pair row-major."""
    a, p, n = select_triplets(x, labels, "batch_all", margin=margin, squared=squared, backend="torch",
                              max_triplets=max_triplets, generator=generator)
    d, lab = brute_distances(x, squared), labels.tolist()
    got = list(zip(a.tolist(), p.tolist(), n.tolist()))
    assert len(set(got)) == len(got)
    assert [t[:2] for t in got] == sorted(t[:2] for t in got)
    must, may = set(), set()
    for i, j in itertools.permutations(range(len(lab)), 2):
        if lab[i] == lab[j]:
            strict, loose = brute_candidates(d, lab, i, j, margin, False, tol)
            must |= {(i, j, k) for k in strict}
            may |= {(i, j, k) for k in loose}
    if max_triplets is None:
        assert must <= set(got) <= may
    else:
        assert set(got) <= may and len(got) == min(max_triplets, len(must))
    return got


@pytest.mark.parametrize("layout", LAYOUTS)
def test_batch_hard_matches_brute_force(layout):
    for dim, squared in [(2, True), (8, False)]:
        x, labels = case(layout, dim, seed=2)
        check_batch_hard(x, labels, squared, tol=1e-9)
        check_batch_hard(x.float(), labels, squared, tol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_batch_all_matches_brute_force(layout):
    for dim, margin, squared in [(2, 0.3, True), (8, 0.2, False)]:
        x, labels = case(layout, dim, seed=4)
        check_batch_all(x, labels, margin, squared, tol=1e-9)


def test_batch_all_cap_is_a_uniform_subset():
    labels = torch.arange(3).repeat_interleave(3)
    x = torch.randn(9, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    full = check_batch_all(x, labels, 0.05, True, tol=1e-9)
    assert 30 < len(full) < 300
    for cap in [0, 7, len(full) // 3, len(full) - 5, len(full) + 10]:
        capped = check_batch_all(x, labels, 0.05, True, tol=1e-9, max_triplets=cap)
        assert set(capped) <= set(full)
    hits = dict.fromkeys(full, 0)
    draws = 200
    for s in range(draws):
        got = select_triplets(x, labels, "batch_all", margin=0.05, max_triplets=10,
                              generator=torch.Generator().manual_seed(s))
        for t in zip(*_as_lists(got)):
            hits[t] += 1
    expected = draws * 10 / len(full)
    chi2 = sum((h - expected) ** 2 / expected for h in hits.values())
    assert scipy.stats.chi2.sf(chi2, len(full) - 1) > 1e-3


def test_max_triplets_caps_every_strategy():
    x, labels = case("grouped", 2, seed=6)
    for strategy in STRATEGIES:
        full = list(zip(*_as_lists(select_triplets(x, labels, strategy, margin=0.5, generator=torch.Generator()))))
        capped = list(zip(*_as_lists(select_triplets(x, labels, strategy, margin=0.5, max_triplets=4))))
        assert len(capped) == min(4, len(full)) and capped == sorted(capped, key=lambda t: t[:2])
        if strategy == "batch_hard":
            assert set(capped) <= set(full)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_triplets(strategy):
    x, labels = case("random", 8, seed=7)
    runs = [select_triplets(x, labels, strategy, margin=0.5, generator=torch.Generator().manual_seed(s),
                            max_triplets=50) for s in (11, 11, 12)]
    assert _as_lists(runs[0]) == _as_lists(runs[1])
    if strategy != "batch_hard":
        assert _as_lists(runs[0]) != _as_lists(runs[2])
    torch.manual_seed(5)
    first = select_triplets(x, labels, strategy, margin=0.5)
    torch.manual_seed(5)
    assert _as_lists(first) == _as_lists(select_triplets(x, labels, strategy, margin=0.5))


def test_random_choice_is_uniform():
    x, labels = one_pair_with_five_candidates()
    counts = dict.fromkeys(range(2, 7), 0)
    for s in range(500):
        a, p, n = select_triplets(x, labels, "semihard", margin=0.5, generator=torch.Generator().manual_seed(s))
        assert (a.tolist(), p.tolist()) == ([0], [1])
        counts[n.item()] += 1
    assert_uniform(counts)


def test_outputs_are_long_indices_without_grad():
    x, labels = case("grouped", 8, seed=8, dtype=torch.float32)
    x.requires_grad_(True)
    for strategy in STRATEGIES:
        out = select_triplets(x, labels.int(), strategy)
        assert all(t.dtype == torch.long and not t.requires_grad for t in out)
        assert len({t.numel() for t in out}) == 1


def test_bad_names_and_values_raise_value_error():
    x, labels = case("grouped", 4, seed=9)
    with pytest.raises(ValueError, match="semihard, violating, batch_hard, batch_all"):
        select_triplets(x, labels, "hardest")
    with pytest.raises(ValueError, match="auto, torch, cuda"):
        select_triplets(x, labels, "semihard", backend="numpy")
    for kwargs in [dict(margin=-0.1), dict(margin=float("nan")), dict(max_triplets=-1)]:
        with pytest.raises(ValueError):
            select_triplets(x, labels, "semihard", **kwargs)
    with pytest.raises(ValueError, match="labels"):
        select_triplets(x, labels[:-1], "semihard")
    assert BACKENDS == ("auto", "torch", "cuda")


def test_auto_on_cpu_uses_torch_and_explicit_cuda_fails_clearly():
    x, labels = case("grouped", 4, seed=10)
    auto = select_triplets(x, labels, "semihard", generator=torch.Generator().manual_seed(1))
    ref = select_triplets(x, labels, "semihard", backend="torch", generator=torch.Generator().manual_seed(1))
    assert _as_lists(auto) == _as_lists(ref)
    if not cuda_backend.probe()[0]:
        with pytest.raises(UserError, match="backend 'cuda'") as err:
            select_triplets(x, labels, "semihard", backend="cuda")
        assert "\n" not in str(err.value)


@pytest.fixture
def fresh_probe(monkeypatch):
    """Pretend torch sees a GPU, and clear the probe cache before and after."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cuda_backend.probe.cache_clear()
    yield
    cuda_backend.probe.cache_clear()


def test_probe_without_cupy_falls_back_to_torch(fresh_probe, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    ok, reason = cuda_backend.probe()
    assert not ok and reason.startswith("CuPy is not usable") and "cupy" in reason
    assert select_module._backend_module("auto", torch.device("cuda", 0)) is torch_backend
    with pytest.raises(UserError, match="unavailable"):
        select_module._backend_module("cuda", torch.device("cuda", 0))


def test_probe_detects_cupy_that_imports_but_cannot_launch_once(fresh_probe, monkeypatch):
    calls = []

    class CUDARuntimeError(RuntimeError):
        pass

    def arange(n):
        calls.append(n)
        raise CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(arange=arange))
    assert cuda_backend.probe() == cuda_backend.probe()
    ok, reason = cuda_backend.probe()
    assert not ok and "CUDARuntimeError" in reason and len(calls) == 1
    assert select_module._backend_module("auto", torch.device("cuda", 0)) is torch_backend


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("source", sorted((ROOT / "kernels").glob("*.cu")), ids=lambda p: p.name)
def test_kernels_compile_with_nvcc(source, tmp_path):
    result = subprocess.run(["nvcc", "-ptx", "-arch=sm_90", "--std=c++14", "-o", str(tmp_path / "out.ptx"),
                             str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    for name in ["pair_negatives", "count_violations", "write_violations", "kth_violations", "batch_hard"]:
        assert name not in source.read_text() or f".entry {name}" in ptx

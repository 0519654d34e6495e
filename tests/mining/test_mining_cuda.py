"""The cuda backend (kernels/mining.cu) against the torch backend, on three targets: a GPU through CuPy (skipped
without one), and the CPU through the SIMT emulator (tests/helpers/simt), which compiles the same kernel source with g++
and runs every thread of every block, under two schedules: round robin, and warps in a random order each running
ahead of the others (a missing __syncthreads shows in one or the other). Sizes above EMULATED_MAX_B are GPU-only."""
import itertools
from unittest import mock

import numpy as np
import pytest
import torch

from tests.helpers import simt_kernels
from tests.helpers.mining import assert_uniform, one_pair_with_five_candidates
from tripletloss.mining import cuda_backend, select_triplets, torch_backend

EMULATED_MAX_B = 300  # the emulator runs ~1e6 threads a second: B=1800 would take minutes per call


@pytest.fixture(scope="module")
def emulated_module(tmp_path_factory):
    """kernels/mining.cu built for the SIMT emulator."""
    if not simt_kernels.available():
        pytest.skip("needs g++ to build the kernels for the SIMT emulator")
    return simt_kernels.EmulatedModule(cuda_backend.KERNEL_SOURCE, tmp_path_factory.mktemp("simt"))


@pytest.fixture(scope="module", params=["emulated-round-robin", "emulated-warps", "gpu"])
def device(request):
    """The device the cuda backend runs on: a GPU, or the CPU with kernel launches sent to the emulator."""
    if request.param == "gpu":
        if not cuda_backend.probe()[0]:
            pytest.skip("needs a CUDA GPU and a working CuPy")
        yield torch.device("cuda")
        return
    module = request.getfixturevalue("emulated_module")
    seeds = itertools.count(1) if request.param == "emulated-warps" else itertools.repeat(0)  # a warp order a launch

    def launch(name, device, rows, shared_bytes, *args):
        if rows:
            module.launch(name, rows, cuda_backend.THREADS, shared_bytes, *args, schedule=next(seeds))

    with mock.patch.object(cuda_backend, "_launch", launch), mock.patch.object(cuda_backend, "require", lambda d: None):
        yield torch.device("cpu")


def _skip_if_too_big(device, B):
    if device.type == "cpu" and B > EMULATED_MAX_B:
        pytest.skip(f"B={B} is GPU-only (emulating it takes minutes)")


def _batch(device, B, dim, identities, seed, integer=False):
    _skip_if_too_big(device, B)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, identities, (B,), generator=gen)
    if integer:  # small-integer coordinates: exact distances, many ties on the rule's boundaries
        x = torch.randint(-2, 3, (B, dim), generator=gen).float()
    else:
        x = torch.nn.functional.normalize(torch.randn(B, dim, generator=gen), dim=1)
    return x.to(device), labels.to(device)


def _run(x, labels, strategy, backend, seed=0, **kw):
    out = select_triplets(x, labels, strategy, backend=backend, generator=torch.Generator().manual_seed(seed), **kw)
    assert all(t.device == x.device and t.dtype == torch.long for t in out)
    return [t.tolist() for t in out]


def _distances(x, squared):
    """The distance matrix both backends use: the same Gram matrix and the same float32 expression."""
    return torch_backend._distances(x.float(), squared).cpu()


DISTANCE_MATRIX = """
extern "C" __global__ void distance_matrix(const float* gram, const float* sq, int B, int squared, float* out) {
    for (int n = threadIdx.x; n < B; n += blockDim.x)
        out[(long long)blockIdx.x * B + n] = distance(gram, sq, B, blockIdx.x, n, squared);
}
"""


@pytest.mark.skipif(not simt_kernels.available(), reason="needs g++ to build the kernels for the SIMT emulator")
@pytest.mark.parametrize("squared", [True, False])
def test_kernel_distances_are_bitwise_the_torch_distances(tmp_path, squared):
    """The kernels' `distance` and torch_backend's squared matrix from one Gram matrix: equal to the last bit (on a
    GPU the Gram matrix is shared too, and neither side contracts the expression into an FMA). The square root is
    compared with IEEE's (numpy's): torch's vectorised CPU sqrt is off by an ulp in ~15 % of entries, its CUDA one
    is IEEE like the kernels' __fsqrt_rn."""
    module = simt_kernels.EmulatedModule(cuda_backend.KERNEL_SOURCE, tmp_path, extra=DISTANCE_MATRIX)
    x = torch.nn.functional.normalize(torch.randn(70, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    gram = x @ x.T
    out = torch.empty(70, 70)
    module.launch("distance_matrix", 70, 64, 0, gram, gram.diagonal().contiguous(), np.int32(70), np.int32(squared),
                  out)
    expected = _distances(x, squared=True)
    assert torch.equal(out, expected if squared else torch.from_numpy(np.sqrt(expected.numpy())))


# (B, D, identities, integer coordinates): FaceNet-shaped, one identity, mostly singletons, all distinct, B = 1
CASES = [(64, 8, 8, False), (300, 16, 30, False), (1800, 128, 45, False), (200, 3, 10, True), (50, 4, 1, False),
         (97, 8, 200, False), (40, 4, 10**6, False), (1, 4, 1, False)]


@pytest.mark.parametrize("B,dim,identities,integer", CASES)
@pytest.mark.parametrize("strategy", ["semihard", "violating"])
@pytest.mark.parametrize("squared", [True, False])
def test_pair_strategies_same_pairs_and_valid_negatives(device, B, dim, identities, integer, strategy, squared):
    x, labels = _batch(device, B, dim, identities, seed=B, integer=integer)
    margin = 2.0 if integer else 0.2
    ca, cp, cn = _run(x, labels, strategy, "cuda", margin=margin, squared=squared)
    ta, tp, _ = _run(x, labels, strategy, "torch", margin=margin, squared=squared)
    assert list(zip(ca, cp)) == list(zip(ta, tp))  # the same pairs, same row-major order
    d, lab = _distances(x, squared), labels.tolist()
    hi = d[ca, cp] + margin
    dn = d[ca, cn]
    assert torch.all(dn < hi)
    if strategy == "semihard":
        assert torch.all(dn > d[ca, cp])
    assert all(lab[a] == lab[p] and lab[a] != lab[n] and a < p for a, p, n in zip(ca, cp, cn))


@pytest.mark.parametrize("B,dim,identities,integer", CASES)
@pytest.mark.parametrize("squared", [True, False])
def test_batch_hard_matches_torch(device, B, dim, identities, integer, squared):
    x, labels = _batch(device, B, dim, identities, seed=B + 1, integer=integer)
    assert _run(x, labels, "batch_hard", "cuda", squared=squared) == _run(x, labels, "batch_hard", "torch",
                                                                          squared=squared)


@pytest.mark.parametrize("B,dim,identities,integer", CASES[:2] + CASES[3:])
def test_batch_all_same_set_as_torch(device, B, dim, identities, integer):
    x, labels = _batch(device, B, dim, identities, seed=B + 2, integer=integer)
    margin = 2.0 if integer else 0.2
    cuda = list(zip(*_run(x, labels, "batch_all", "cuda", margin=margin)))
    torch_ = list(zip(*_run(x, labels, "batch_all", "torch", margin=margin)))
    assert sorted(cuda) == sorted(torch_) and len(set(cuda)) == len(cuda)
    assert [t[:2] for t in cuda] == sorted(t[:2] for t in cuda)
    for cap in [0, len(cuda) // 50 + 1, 10**9]:  # nothing, a sample (kth_violations), everything
        capped = list(zip(*_run(x, labels, "batch_all", "cuda", margin=margin, max_triplets=cap)))
        assert len(capped) == min(cap, len(cuda)) and set(capped) <= set(cuda) and len(set(capped)) == len(capped)


@pytest.mark.parametrize("strategy", ["semihard", "violating", "batch_hard", "batch_all"])
def test_cuda_same_seed_same_triplets(device, strategy):
    x, labels = _batch(device, 200, 16, 10, seed=3)
    first = _run(x, labels, strategy, "cuda", seed=7, max_triplets=20000)
    assert first == _run(x, labels, strategy, "cuda", seed=7, max_triplets=20000)
    if strategy != "batch_hard":
        assert first != _run(x, labels, strategy, "cuda", seed=8, max_triplets=20000)


def test_cuda_random_choice_is_uniform(device):
    x, labels = one_pair_with_five_candidates()
    x, labels = x.to(device), labels.to(device)
    counts = dict.fromkeys(range(2, 7), 0)
    for s in range(2000):
        a, p, n = _run(x, labels, "semihard", "cuda", seed=s, margin=0.5)
        assert (a, p) == ([0], [1])
        counts[n[0]] += 1
    assert_uniform(counts)


def test_cuda_runs_on_torch_current_stream(device):
    if device.type != "cuda":
        pytest.skip("CUDA streams exist on a GPU only")
    x, labels = _batch(device, 400, 16, 20, seed=4)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        y = x * 1.0  # produced on the side stream: the kernels must see it
        out = _run(y, labels, "semihard", "cuda", seed=1)
    assert out == _run(x, labels, "semihard", "cuda", seed=1)

"""Miners as hand-written CUDA kernels (kernels/mining.cu) launched through CuPy on torch tensors.

Tensors cross to CuPy through DLPack (zero copy; outputs are allocated by torch and filled in place) and the
kernels run on torch's current CUDA stream. The Gram matrix comes from torch's matmul; distances and selection are
fused in the kernels. Random picks use a counter-based hash of (seed, a * B + p), so a seed reproduces the same
triplets on the same device.
"""
import functools

import numpy as np
import torch

from tripletloss import resources
from tripletloss.errors import UserError
from tripletloss.mining.sampling import sample_in_groups

KERNEL_SOURCE = resources.path("kernels/mining.cu")
THREADS = 256


@functools.lru_cache(maxsize=None)
def probe():
    """Return (True, "") when CuPy imports and can run a kernel on a CUDA GPU, else (False, reason). Cached.

    `cupy-cuda12x` imports fine on a machine without a GPU (or with too old a driver) and only fails on the first
    launch, so this launches a tiny CuPy kernel once.
    """
    if not torch.cuda.is_available():
        return False, "torch sees no CUDA device"
    try:
        import cupy

        int(cupy.arange(3).sum())
    except Exception as exc:  # ImportError, CUDARuntimeError, CompileException...: any means "not usable"
        return False, f"CuPy is not usable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return True, ""


def require(device):
    """Raise UserError (one line) unless the CUDA backend can run on `device`."""
    ok, reason = probe()
    if not ok:
        raise UserError(f"mining backend 'cuda' is unavailable: {reason}; use backend='torch' or 'auto'")
    if device.type != "cuda":
        raise UserError(f"mining backend 'cuda' needs embeddings on a CUDA device, got {device}")


@functools.lru_cache(maxsize=None)
def _module():
    """The compiled kernels/mining.cu (compiled once per process, per device on first use)."""
    import cupy

    return cupy.RawModule(code=KERNEL_SOURCE.read_text(), options=("--std=c++14",))


def _launch(name, device, rows, shared_bytes, *args):
    """Launch kernel `name` with one block per anchor row on torch's current stream; tensors go through DLPack."""
    import cupy

    if rows == 0:
        return
    with cupy.cuda.Device(device.index), cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream):
        kernel = _module().get_function(name)
        if shared_bytes > 48 * 1024:  # above the default limit: opt in, up to what the GPU allows
            limit = cupy.cuda.runtime.deviceGetAttribute(
                cupy.cuda.runtime.cudaDevAttrMaxSharedMemoryPerBlockOptin, device.index)
            if shared_bytes + 1024 > limit:
                raise UserError(f"a batch of {rows} embeddings is too large for the cuda mining backend "
                                f"({shared_bytes} bytes of shared memory per block, this GPU allows {limit}); "
                                "use backend='torch'")
            kernel.max_dynamic_shared_size_bytes = shared_bytes
        cargs = tuple(cupy.from_dlpack(a) if isinstance(a, torch.Tensor) else a for a in args)
        kernel((rows,), (THREADS,), cargs, shared_mem=shared_bytes)


def _prepare(x, labels):
    """(gram, its diagonal, labels, B, device): the kernels' inputs, contiguous."""
    x = x.float().contiguous()
    gram = (x @ x.T).contiguous()
    return gram, gram.diagonal().contiguous(), labels.contiguous(), x.shape[0], x.device


def _one_negative_per_pair(x, labels, margin, seed, squared, semihard):
    """semihard / violating: the pair_negatives kernel fills a (B, B) choice matrix (-1: no pair or no candidate)."""
    gram, sq, labels, B, device = _prepare(x, labels)
    choice = torch.empty((B, B), dtype=torch.int32, device=device)
    _launch("pair_negatives", device, B, 8 * B, gram, sq, labels, np.int32(B), np.float32(margin), np.int32(semihard),
            np.int32(squared), np.uint64(seed), choice)
    a, p = (choice >= 0).nonzero(as_tuple=True)
    return a, p, choice[a, p].long()


def semihard(x, labels, margin, seed, squared):
    """FaceNet semi-hard: pairs a < p, negative uniform among n with d_ap < d_an < d_ap + margin."""
    return _one_negative_per_pair(x, labels, margin, seed, squared, semihard=True)


def violating(x, labels, margin, seed, squared):
    """Margin-violating: pairs a < p, negative uniform among n with d_an < d_ap + margin."""
    return _one_negative_per_pair(x, labels, margin, seed, squared, semihard=False)


def batch_hard(x, labels, margin, seed, squared):
    """Batch-hard: each anchor with a positive and a negative, its farthest positive and nearest negative."""
    gram, sq, labels, B, device = _prepare(x, labels)
    hardest = torch.empty((2, B), dtype=torch.long, device=device)
    _launch("batch_hard", device, B, 0, gram, sq, labels, np.int32(B), np.int32(squared), hardest[0], hardest[1])
    a = ((hardest[0] >= 0) & (hardest[1] >= 0)).nonzero(as_tuple=True)[0]
    return a, hardest[0, a], hardest[1, a]


def batch_all(x, labels, margin, seed, squared, max_triplets=None):
    """Batch-all: every (a, p, n), a != p ordered, with d_an < d_ap + margin; at most `max_triplets`, uniformly.

    Triplets come grouped by (a, p) in row-major order; within a pair, negatives by increasing column.
    """
    gram, sq, labels, B, device = _prepare(x, labels)
    common = (gram, sq, labels, np.int32(B), np.float32(margin), np.int32(squared))
    counts = torch.empty((B, B), dtype=torch.int32, device=device)
    _launch("count_violations", device, B, 8 * B, *common, counts)
    ends = counts.view(-1).cumsum(0)
    total = int(ends[-1]) if B else 0
    if max_triplets is None or total <= max_triplets:
        out = torch.empty((3, total), dtype=torch.long, device=device)
        _launch("write_violations", device, B if total else 0, 8 * B, *common, ends - counts.view(-1), *out)
        return out[0], out[1], out[2]
    pair, rank = sample_in_groups(counts.view(-1), ends, max_triplets, seed, device)
    a, p = pair // B, pair % B
    n = torch.empty_like(pair)
    _launch("kth_violations", device, B, 4 * B, *common, a, p, rank, np.int64(pair.numel()), n)
    return a, p, n

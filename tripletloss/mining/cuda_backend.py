"""CUDA mining backend: the kernels of kernels/mining.cu, compiled by CuPy (NVRTC) and run on torch tensors.

Tensors reach the kernels through DLPack (zero copy) and kernels run on torch's current CUDA stream. Results
match the torch backend's rules; a random choice takes the candidate of the same counter-based rank, counted in
index order rather than distance order, so the two backends draw from the same sets but not the same members.
"""
import functools

import numpy as np
import torch

from tripletloss import ROOT
from tripletloss.mining.rng import draw_seed, sample_without_replacement

KERNEL_FILE = ROOT / "kernels" / "mining.cu"
KERNELS = ("pairwise_sqdist", "one_per_pair", "violation_counts", "batch_all_write", "batch_hard")
THREADS = 256


@functools.lru_cache(maxsize=None)
def _kernels(device_index):
    """Compile kernels/mining.cu for one device (cached) and return {name: cupy.RawKernel}."""
    import cupy

    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(code=KERNEL_FILE.read_text(), options=("--std=c++14",))
        return {name: module.get_function(name) for name in KERNELS}


def unavailable_reason(embeddings):
    """Return why the CUDA backend cannot mine these embeddings (one line), or None when it can."""
    if not embeddings.is_cuda:
        return "the embeddings are not on a CUDA device"
    try:
        _kernels(embeddings.device.index)
    except ImportError:
        return "CuPy is not installed (pip install cupy-cuda12x, or the project's [cuda] extra)"
    except Exception as exc:  # NVRTC / driver failures come in many exception types
        return f"CuPy could not compile {KERNEL_FILE}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return None


def _launch(device, name, grid, block, *args):
    """Run kernel `name` on torch's current stream of `device`; torch tensors in args go through DLPack."""
    import cupy

    stream = cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream, device.index)
    with cupy.cuda.Device(device.index), stream:
        converted = [cupy.from_dlpack(a) if isinstance(a, torch.Tensor) else a for a in args]
        _kernels(device.index)[name](grid, block, tuple(converted))


def pairwise_distances(x, squared=True):
    """Return the (B, B) float32 distance matrix of x (B, D) computed by the pairwise_sqdist kernel."""
    x = x.detach().float().contiguous()
    b, dim = x.shape
    d = torch.empty((b, b), dtype=torch.float32, device=x.device)
    tiles = (b + 15) // 16
    _launch(x.device, "pairwise_sqdist", (tiles, tiles), (16, 16), x, np.int32(b), np.int32(dim),
            np.int32(bool(squared)), d)
    return d


def _one_per_pair(d, labels, margin, lower_bound, generator):
    """Semihard / violating on the GPU: kernel picks per pair, then row-major compaction."""
    b = len(labels)
    out = torch.full((b, b), -1, dtype=torch.int64, device=d.device)
    _launch(d.device, "one_per_pair", (b,), (THREADS,), d, labels, np.int32(b), np.float32(margin),
            np.int32(lower_bound), np.uint32(draw_seed(generator)), out)
    a, p = (out >= 0).nonzero(as_tuple=True)
    return a, p, out[a, p]


def _batch_all(d, labels, margin, generator, max_triplets):
    """Batch-all on the GPU: per-pair counts, global ranks (all, or a random sample), then per-pair writes."""
    b = len(labels)
    counts = torch.zeros((b, b), dtype=torch.int32, device=d.device)
    _launch(d.device, "violation_counts", (b,), (THREADS,), d, labels, np.int32(b), np.float32(margin), counts)
    a, p = (counts > 0).nonzero(as_tuple=True)
    count = counts[a, p].to(torch.int64)
    ends = count.cumsum(0)
    total = int(ends[-1]) if len(ends) else 0
    if max_triplets is not None and total > max_triplets:
        chosen = sample_without_replacement(total, max_triplets, generator, d.device)
    else:
        chosen = torch.arange(total, device=d.device)
    starts = ends - count
    sel_lo = torch.searchsorted(chosen, starts)
    sel_hi = torch.searchsorted(chosen, ends)
    out = torch.empty(len(chosen), dtype=torch.int64, device=d.device)
    if len(a):
        blocks = (len(a) * 32 + THREADS - 1) // THREADS
        _launch(d.device, "batch_all_write", (blocks,), (THREADS,), d, labels, np.int32(b), np.float32(margin),
                a.contiguous(), p.contiguous(), starts, sel_lo, sel_hi, chosen, np.int64(len(a)), out)
    pair = torch.searchsorted(ends, chosen, right=True)
    return a[pair], p[pair], out


def _batch_hard(d, labels):
    """Batch-hard on the GPU: one warp per anchor, then keep anchors with both a positive and a negative."""
    b = len(labels)
    pos = torch.empty(b, dtype=torch.int64, device=d.device)
    neg = torch.empty(b, dtype=torch.int64, device=d.device)
    _launch(d.device, "batch_hard", ((b * 32 + THREADS - 1) // THREADS,), (THREADS,), d, labels, np.int32(b),
            pos, neg)
    a = ((pos >= 0) & (neg >= 0)).nonzero(as_tuple=True)[0]
    return a, pos[a], neg[a]


def select(embeddings, labels, strategy, margin, generator=None, squared=True, max_triplets=None):
    """Return (anchor, positive, negative) int64 CUDA tensors for `strategy`; see mining.select_triplets."""
    d = pairwise_distances(embeddings, squared=squared)
    labels = labels.contiguous()
    if strategy in ("semihard", "violating"):
        return _one_per_pair(d, labels, margin, int(strategy == "semihard"), generator)
    if strategy == "batch_all":
        return _batch_all(d, labels, margin, generator, max_triplets)
    return _batch_hard(d, labels)

"""select_triplets: validate the request, pick a backend, run the strategy under no_grad."""
import math

import torch

from tripletloss.mining import cuda_backend, torch_backend
from tripletloss.mining.sampling import draw_seed, local_generator, sample_sorted

#: Strategies that mine any labelled batch (P x K); "pinguo" needs its own batch layout and is listed apart.
STRATEGIES = ("semihard", "violating", "batch_hard", "batch_all")
ALL_STRATEGIES = STRATEGIES + ("pinguo",)
BACKENDS = ("auto", "torch", "cuda")


def _check(embeddings, labels, strategy, margin, backend, max_triplets):
    """Raise ValueError (naming the allowed values) for a bad strategy, backend, tensor shape, margin or cap."""
    if strategy not in ALL_STRATEGIES:
        raise ValueError(f"unknown mining strategy {strategy!r}; allowed: {', '.join(ALL_STRATEGIES)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown mining backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if embeddings.dim() != 2 or not embeddings.is_floating_point():
        raise ValueError(f"embeddings must be a (B, D) float tensor, got {embeddings.dtype} {tuple(embeddings.shape)}")
    if labels.shape != embeddings.shape[:1]:
        raise ValueError(f"labels must have shape ({embeddings.shape[0]},), got {tuple(labels.shape)}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be finite and >= 0, got {margin}")
    if max_triplets is not None and max_triplets < 0:
        raise ValueError(f"max_triplets must be None or >= 0, got {max_triplets}")


def _backend_module(backend, device):
    """The backend module for `backend` on `device`: cuda_backend or torch_backend (auto falls back to torch)."""
    if backend == "cuda":
        cuda_backend.require(device)
        return cuda_backend
    if backend == "auto" and device.type == "cuda" and cuda_backend.probe()[0]:
        return cuda_backend
    return torch_backend


def _cap(triplets, max_triplets, seed):
    """At most `max_triplets` of the triplets, a uniform random subset in their original order."""
    device = triplets[0].device
    keep = sample_sorted(triplets[0].numel(), max_triplets, local_generator(seed ^ 1, device), device)
    return tuple(t[keep] for t in triplets)


def select_triplets(embeddings, labels, strategy, margin=0.2, backend="auto", generator=None, squared=True,
                    max_triplets=None):
    """Online triplet mining: indices (anchor, positive, negative) of triplets from one batch.

    Takes `embeddings` (B, D) float and integer `labels` (B,); `strategy` one of ALL_STRATEGIES:
    - "semihard" (FaceNet): every same-label pair i < j (anchor i, positive j) with a negative drawn uniformly among
      n with d_ap < d_an < d_ap + margin; pairs without one are dropped.
    - "violating" (facenet repo / OpenFace / VGG-Face): the same with any n such that d_an < d_ap + margin.
    - "batch_hard" (Hermans et al.): for each anchor with a positive and a negative, its farthest positive and
      nearest negative (lowest index on ties).
    - "batch_all": every (a, p, n) with a != p (ordered pairs) and d_an < d_ap + margin.
    - "pinguo" (the classic Caffe project): on a batch [anchor x T, T positives, T negatives], triplet i pairs anchor
      copy i with the i-th farthest positive and the i-th farthest negative (torch only: the cuda backend runs it
      in torch too); see tripletloss.losses.pinguo_loss for its gradient rule.
    Distances are squared euclidean unless `squared=False`. `backend` is "torch" (vectorised reference), "cuda"
    (CuPy kernels; float32) or "auto" (cuda for CUDA tensors when CuPy works, else torch). Random choices derive
    from one 64-bit seed drawn from `generator` (torch's default generator when None), so the same seed gives the
    same triplets on the same device and backend. `max_triplets` keeps at most that many, uniformly at random.

    Returns three int64 tensors of equal length on the embeddings' device, grouped by (anchor, positive) in
    row-major order.
    """
    _check(embeddings, labels, strategy, margin, backend, max_triplets)
    device = embeddings.device
    # "pinguo" (T distances per batch, no kernel) runs in torch whatever the backend
    impl = torch_backend if strategy == "pinguo" else _backend_module(backend, device)
    seed = draw_seed(generator)
    if embeddings.shape[0] == 0:
        return tuple(torch.empty(0, dtype=torch.long, device=device) for _ in range(3))
    with torch.no_grad():
        x, labels = embeddings.detach(), labels.to(device=device, dtype=torch.long)
        if strategy == "batch_all":
            return impl.batch_all(x, labels, margin, seed, squared, max_triplets)
        triplets = getattr(impl, strategy)(x, labels, margin, seed, squared)
        return _cap(triplets, max_triplets, seed) if max_triplets is not None else triplets

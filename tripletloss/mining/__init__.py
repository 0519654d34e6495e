"""Online triplet mining: pairwise distances and triplet selection inside a batch, in torch or CUDA kernels.

Strategies (distances squared euclidean unless squared=False):
  semihard   every same-label pair i<j (anchor i, positive j); a negative drawn uniformly among the n with
             d_ap < d_an < d_ap + margin; a pair with no such n is dropped (FaceNet paper).
  violating  as semihard but among every n with d_an < d_ap + margin (facenet repo, OpenFace, VGG-Face).
  batch_hard for each anchor with a positive and a negative: its farthest positive, nearest negative (Hermans).
  batch_all  every (a, p, n), over ordered pairs a != p, with d_an < d_ap + margin; max_triplets caps it at random.
"""
import torch

from tripletloss.errors import ConfigError, UserError
from tripletloss.mining import cuda_backend, torch_backend
from tripletloss.mining.distances import pairwise_distances

STRATEGIES = ("semihard", "violating", "batch_hard", "batch_all")
BACKENDS = ("auto", "torch", "cuda")

__all__ = ["STRATEGIES", "BACKENDS", "pairwise_distances", "select_triplets"]


def _check_args(embeddings, labels, strategy, margin, backend, max_triplets):
    """Raise ConfigError for a bad strategy/margin/backend/max_triplets, ValueError for mismatched tensors."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy {strategy!r} is not a triplet selection strategy; choose one of {STRATEGIES}")
    if backend not in BACKENDS:
        raise ConfigError(f"mining backend {backend!r} is unknown; choose one of {BACKENDS}")
    if not margin > 0:
        raise ConfigError(f"margin must be > 0, got {margin!r}")
    if max_triplets is not None and max_triplets < 0:
        raise ConfigError(f"max_triplets must be >= 0 or None, got {max_triplets!r}")
    if embeddings.dim() != 2 or labels.shape != (embeddings.shape[0],):
        raise ValueError(f"need embeddings (B, D) and labels (B,), got {tuple(embeddings.shape)} "
                         f"and {tuple(labels.shape)}")
    if len(labels) >= 2**31:
        raise ValueError(f"batch of {len(labels)} embeddings is too large to mine (limit 2**31 - 1)")


def _resolve_backend(backend, embeddings):
    """Return 'torch' or 'cuda' for the requested backend; UserError if 'cuda' cannot run on these embeddings."""
    if backend == "torch":
        return "torch"
    problem = cuda_backend.unavailable_reason(embeddings)
    if backend == "auto":
        return "torch" if problem else "cuda"
    if problem:
        raise UserError(f"mining backend 'cuda' cannot run: {problem}")
    return "cuda"


def select_triplets(embeddings, labels, strategy, margin=0.2, backend="auto", generator=None, squared=True,
                    max_triplets=None):
    """Select triplets in a batch.

    embeddings: (B, D) float tensor; labels: (B,) integer tensor on the same device; strategy: one of STRATEGIES;
    margin: > 0; backend: 'torch', 'cuda' or 'auto' (cuda when the tensor is on a CUDA device and CuPy works);
    generator: torch.Generator seeding the random choices (same seed, same device: same triplets);
    squared: squared euclidean distances (default) or plain; max_triplets: cap for batch_all (None: no cap).
    Returns (anchor, positive, negative): int64 tensors of equal length on the embeddings' device.
    """
    _check_args(embeddings, labels, strategy, margin, backend, max_triplets)
    labels = labels.to(device=embeddings.device, dtype=torch.int64)
    impl = torch_backend if _resolve_backend(backend, embeddings) == "torch" else cuda_backend
    return impl.select(embeddings, labels, strategy, float(margin), generator=generator, squared=squared,
                       max_triplets=max_triplets)

"""Pairwise euclidean distances from the Gram matrix: exact zeros on the diagonal, never negative, safe gradients."""
import torch


def gram_to_squared(gram, zero_diagonal=True):
    """Squared distances (-2 g_ij + sq_i) + sq_j from a (B, B) Gram matrix, clamped at 0, computed in place:
    `gram` is overwritten and returned (callers pass a fresh x @ x.T). The diagonal is set to exactly 0 unless
    `zero_diagonal=False` (it is then 0 or a rounding error above it).

    The CUDA kernels (kernels/mining.cu, `distance`) evaluate the same expression in the same order, so both
    backends see bit-identical distances when they share the Gram matrix.
    """
    sq = gram.diagonal().clone()
    d2 = gram.mul_(-2).add_(sq.unsqueeze(1)).add_(sq).clamp_min_(0)  # in place: no second (B, B) buffer
    return d2.fill_diagonal_(0) if zero_diagonal else d2


def safe_sqrt(d2):
    """Elementwise sqrt of non-negative `d2` whose gradient is 0 (not inf/NaN) where d2 == 0."""
    zero = d2 == 0
    return torch.sqrt(d2.masked_fill(zero, 1)).masked_fill(zero, 0)


def pairwise_distances(x, squared=True):
    """Euclidean distances between the rows of `x` (B, D); returns a (B, B) tensor of x's dtype.

    Squared distances when `squared` (the default), plain euclidean otherwise. The diagonal is exactly 0, no entry
    is negative or NaN, and the result is differentiable with finite gradients even for duplicate rows.
    """
    if x.dim() != 2:
        raise ValueError(f"pairwise_distances expects a (B, D) tensor, got shape {tuple(x.shape)}")
    d2 = gram_to_squared(x @ x.T)
    return d2 if squared else safe_sqrt(d2)

"""Pairwise euclidean distances between embeddings, safe for selection and for backpropagation."""
import torch


def pairwise_distances(x, squared=True):
    """Return the (B, B) matrix of (squared, by default) euclidean distances between the rows of x (B, D).

    Exact zeros on the diagonal, never negative, no NaN (also in the gradient of the non-squared form).
    Float16/bfloat16 inputs are computed in float32.
    """
    if x.dim() != 2:
        raise ValueError(f"embeddings must be 2-D (B, D), got shape {tuple(x.shape)}")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    sq = (x * x).sum(dim=1)
    d = (sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)).clamp_min(0.0)
    d = d * (1.0 - torch.eye(len(x), dtype=d.dtype, device=d.device))
    if squared:
        return d
    zero = d == 0
    return torch.sqrt(d + zero.to(d.dtype)) * (~zero).to(d.dtype)

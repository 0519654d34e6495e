"""pairwise_distances: agreement with float64 brute force, exact zero diagonal, no negatives, no NaN."""
import torch
from hypothesis import given, settings, strategies as st

from tripletloss.mining import pairwise_distances


def brute_force(x):
    """(B, B) squared distances in float64 by explicit differences."""
    x = x.double()
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 30), dim=st.integers(1, 40), seed=st.integers(0, 2**31), scale=st.sampled_from([1e-3, 1, 30]))
def test_matches_brute_force(b, dim, seed, scale):
    x = torch.randn(b, dim, generator=torch.Generator().manual_seed(seed)) * scale
    want = brute_force(x)
    got = pairwise_distances(x)
    assert got.dtype == torch.float32
    assert torch.allclose(got.double(), want, rtol=1e-4, atol=1e-5 * scale**2 * dim)
    assert torch.allclose(pairwise_distances(x, squared=False).double(), want.sqrt(), rtol=1e-4,
                          atol=3e-3 * scale)


def test_diagonal_zero_and_never_negative_even_for_duplicates():
    x = torch.randn(5, 64).repeat(8, 1) * 100  # every row appears 8 times
    for squared in (True, False):
        d = pairwise_distances(x, squared=squared)
        assert (d.diagonal() == 0).all()
        assert (d >= 0).all() and not d.isnan().any()


def test_gradient_of_plain_distance_has_no_nan():
    x = torch.randn(4, 8).repeat(2, 1).requires_grad_()
    pairwise_distances(x, squared=False).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_half_precision_is_computed_in_float32():
    x = torch.randn(6, 16)
    d = pairwise_distances(x.half())
    assert d.dtype == torch.float32
    assert torch.allclose(d.double(), brute_force(x.half().float()), rtol=1e-3, atol=1e-3)

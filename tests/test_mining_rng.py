"""The counter-based hash and sampling helpers behind mining's random choices."""
import torch
from hypothesis import given, settings, strategies as st

from tripletloss.mining.rng import hash32, pair_random, sample_without_replacement, uniform_index


def lowbias32(x):
    """Plain-Python lowbias32, the definition the int64 tensor version must reproduce."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50))
def test_hash32_matches_plain_python(values):
    got = hash32(torch.tensor(values, dtype=torch.int64)).tolist()
    assert got == [lowbias32(v) for v in values]


def test_pair_random_is_a_function_of_seed_anchor_positive():
    a = torch.arange(200).repeat_interleave(200)
    p = torch.arange(200).repeat(200)
    bits = pair_random(7, a, p)
    assert torch.equal(bits, pair_random(7, a, p))
    assert (bits >= 0).all() and (bits < 2**32).all()
    assert len(torch.unique(bits)) > 0.99 * len(bits)
    assert (bits != pair_random(8, a, p)).float().mean() > 0.99
    want = lowbias32((lowbias32((lowbias32(7) + 3) & 0xFFFFFFFF) + 5) & 0xFFFFFFFF)
    assert pair_random(7, torch.tensor([3]), torch.tensor([5])).item() == want


def test_uniform_index_is_in_range_and_uniform():
    bits = pair_random(11, torch.arange(60000), torch.zeros(60000, dtype=torch.int64))
    idx = uniform_index(bits, 6)
    assert idx.min() >= 0 and idx.max() <= 5
    freq = torch.bincount(idx, minlength=6).double()
    chi2 = (((freq - 10000) ** 2) / 10000).sum().item()
    assert chi2 < 20.5  # chi-square, 5 degrees of freedom, p = 0.001


@settings(max_examples=40, deadline=None)
@given(total=st.integers(0, 3000), frac=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_sample_without_replacement(total, frac, seed):
    k = int(total * frac)
    got = sample_without_replacement(total, k, torch.Generator().manual_seed(seed))
    assert len(got) == k and len(torch.unique(got)) == k
    assert torch.equal(got, got.sort().values)
    if k:
        assert got.min() >= 0 and got.max() < total

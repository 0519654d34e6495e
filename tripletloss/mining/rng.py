"""Counter-based random numbers shared by the torch and CUDA mining backends.

A triplet's random choice is a pure function of (seed, anchor, positive): the 32-bit `lowbias32` integer hash
(C. Wellons) chained over the three, computed here in int64 torch arithmetic that never overflows and, bit for bit
the same, in kernels/mining.cu. So a seed drawn once from a torch.Generator reproduces the same triplets.
"""
import torch

MASK32 = 0xFFFFFFFF
_MUL1 = 0x7FEB352D
_MUL2 = 0x846CA68B


def _mul32(x, c):
    """Return (x * c) mod 2**32 for int64 tensors x in [0, 2**32) and a 32-bit constant c, without overflow."""
    high = (((x >> 16) * c) & 0xFFFF) << 16
    return (high + (x & 0xFFFF) * c) & MASK32


def hash32(x):
    """Return lowbias32(x) for an int64 tensor of values in [0, 2**32); a bijection on 32-bit integers."""
    x = x ^ (x >> 16)
    x = _mul32(x, _MUL1)
    x = x ^ (x >> 15)
    x = _mul32(x, _MUL2)
    return x ^ (x >> 16)


def pair_random(seed, anchor, positive):
    """Return one uniform 32-bit integer per pair (int64 tensor, values in [0, 2**32)).

    seed: int in [0, 2**32); anchor, positive: int64 tensors of equal shape (batch indices below 2**32).
    """
    key = hash32(torch.full_like(anchor, seed))
    return hash32((hash32((key + anchor) & MASK32) + positive) & MASK32)


def uniform_index(bits, count):
    """Map 32-bit random integers `bits` to indices in [0, count) (Lemire's multiply-shift); count >= 1, < 2**31."""
    return (bits * count) >> 32


def draw_seed(generator=None):
    """Draw a 32-bit seed (Python int) from `generator` (a torch.Generator) or, if None, torch's default CPU RNG."""
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(0, 2**32, (1,), generator=generator, device=device, dtype=torch.int64).item())


def sample_without_replacement(total, k, generator=None, device="cpu"):
    """Return k distinct integers drawn uniformly from range(total), sorted ascending (int64 tensor on device).

    Memory is O(k), not O(total), unless k > total / 2. Requires 0 <= k <= total.
    """
    gen_device = generator.device if generator is not None else "cpu"
    if 2 * k >= total:
        chosen = torch.randperm(total, generator=generator, device=gen_device)[:k]
    else:
        chosen = torch.empty(0, dtype=torch.int64, device=gen_device)
        while len(chosen) < k:
            draw = torch.randint(0, total, (2 * k,), generator=generator, device=gen_device)
            chosen = torch.unique(torch.cat([chosen, draw]))
        keep = torch.randperm(len(chosen), generator=generator, device=gen_device)[:k]
        chosen = chosen[keep]
    return chosen.sort().values.to(device)

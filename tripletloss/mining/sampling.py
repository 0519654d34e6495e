"""Seeds and uniform sampling shared by both backends (a seed reproduces the same triplets on the same device)."""
import torch


def draw_seed(generator=None):
    """Draw a non-negative 63-bit seed from `generator` (a torch.Generator, or torch's default CPU one when None)."""
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(0, 2**63 - 1, (), generator=generator, device=device))


def local_generator(seed, device):
    """A fresh torch.Generator on `device` seeded with `seed`."""
    return torch.Generator(device=device).manual_seed(seed)


def sample_sorted(total, cap, generator, device):
    """Uniform random subset of range(total) of size min(total, cap), sorted ascending (int64 on `device`).

    `cap=None` keeps everything. For total >> cap it never materialises range(total): it pools uniform draws until
    `cap` distinct values are seen, then keeps a uniform `cap`-subset of the pool (uniform by symmetry).
    """
    if cap is None or total <= cap:
        return torch.arange(total, device=device)
    if total <= 2 * cap:
        return torch.randperm(total, generator=generator, device=device)[:cap].sort().values
    pool = torch.empty(0, dtype=torch.long, device=device)
    while pool.numel() < cap:
        draws = torch.randint(total, (2 * cap,), generator=generator, device=device)
        pool = torch.cat([pool, draws]).unique()
    keep = torch.randperm(pool.numel(), generator=generator, device=device)[:cap]
    return pool[keep].sort().values


def sample_in_groups(counts, ends, cap, seed, device):
    """Uniform `cap`-subset (all if `cap` is None) of the items of consecutive groups of sizes `counts` (1-D).

    `ends` is counts.cumsum(0). Returns (group index, rank within its group) LongTensors, in sorted order.
    """
    total = int(ends[-1]) if ends.numel() else 0
    flat = sample_sorted(total, cap, local_generator(seed, device), device)
    group = torch.searchsorted(ends, flat, right=True)
    return group, flat - (ends - counts)[group]

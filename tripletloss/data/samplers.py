"""Batch samplers that make every epoch a pure function of (seed, epoch): resumable mid-epoch and shardable.

Each batch is a list of `(image index, augmentation seed)` pairs for FaceDataset. In distributed training every
rank builds the same global batches and keeps its own slice, so P x K structure holds per rank.
"""
import numpy as np
from torch.utils.data import Sampler

from tripletloss.errors import ConfigError


class _EpochBatches(Sampler):
    """Common part: epoch/resume position and rank slicing. Subclasses implement `global_batches(rng)`."""

    def __init__(self, seed, rank=0, world_size=1):
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch, self.start = 0, 0
        self._cached = (None, None)

    def set_epoch(self, epoch, start_batch=0):
        """Select the epoch to iterate and the batch to start from (to resume mid-epoch)."""
        self.epoch, self.start = epoch, start_batch

    def batches(self, epoch):
        """Return this rank's list of batches for `epoch`, each a list of (index, seed) pairs."""
        if self._cached[0] != epoch:
            self._cached = (epoch, self._make_batches(epoch))
        return self._cached[1]

    def _make_batches(self, epoch):
        rng = np.random.default_rng([self.seed, epoch])
        out = []
        for batch in self.global_batches(rng):
            seeds = rng.integers(0, 2**63 - 1, size=len(batch))
            part = len(batch) // self.world_size
            lo = self.rank * part
            out.append([(int(i), int(s)) for i, s in zip(batch[lo:lo + part], seeds[lo:lo + part])])
        return out

    def __iter__(self):
        return iter(self.batches(self.epoch)[self.start:])

    def __len__(self):
        return len(self.batches(self.epoch)) - self.start


class ShuffledBatches(_EpochBatches):
    """Plain shuffled batches of `batch_size` (per rank) over `num_items`, dropping the last partial batch."""

    def __init__(self, num_items, batch_size, seed, rank=0, world_size=1):
        super().__init__(seed, rank, world_size)
        self.num_items, self.global_size = num_items, batch_size * world_size
        if num_items < self.global_size:
            raise ConfigError(f"softmax_batch_size: {num_items} training images are fewer than one batch of "
                              f"{self.global_size}; lower it")

    def global_batches(self, rng):
        """Return the epoch's global batches (arrays of indices)."""
        order = rng.permutation(self.num_items)
        n = self.num_items // self.global_size
        return [order[i * self.global_size:(i + 1) * self.global_size] for i in range(n)]


class PKBatches(_EpochBatches):
    """Batches of P identities x K images (per rank). Identities with one image are left out (no positive).

    An identity with fewer than K images contributes all its images plus repeats drawn from them, so sampling
    never stalls. Identities are visited in a shuffled order, each at most once per pass.
    """

    def __init__(self, labels, identities_per_batch, images_per_identity, seed, batches_per_epoch=0,
                 rank=0, world_size=1):
        super().__init__(seed, rank, world_size)
        labels = np.asarray(labels)
        groups = {}
        for i, label in enumerate(labels):
            groups.setdefault(int(label), []).append(i)
        self.groups = [np.array(v) for _, v in sorted(groups.items()) if len(v) >= 2]
        self.singletons = sum(1 for v in groups.values() if len(v) < 2)
        self.p, self.k = identities_per_batch * world_size, images_per_identity
        if len(self.groups) < self.p:
            raise ConfigError(f"identities_per_batch: {len(self.groups)} identities with >= 2 images is fewer than "
                              f"the {self.p} identities one batch needs; lower it or add identities")
        usable = sum(len(g) for g in self.groups)
        self.num_batches = batches_per_epoch or max(1, usable // (self.p * self.k))

    def global_batches(self, rng):
        """Return the epoch's global batches (arrays of P*K indices, identity by identity)."""
        order, batches = [], []
        for _ in range(self.num_batches):
            if len(order) < self.p:
                order += [g for g in rng.permutation(len(self.groups)) if g not in order]
            chosen, order = order[:self.p], order[self.p:]
            batches.append(np.concatenate([self._pick(self.groups[g], rng) for g in chosen]))
        return batches

    def _pick(self, group, rng):
        if len(group) >= self.k:
            return rng.choice(group, self.k, replace=False)
        return np.concatenate([rng.permutation(group), rng.choice(group, self.k - len(group))])

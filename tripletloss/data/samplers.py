"""Batch samplers that make every epoch a pure function of (seed, epoch): resumable mid-epoch and shardable.

Each batch is a list of `(image index, augmentation seed)` pairs for FaceDataset. In distributed training every
rank builds the same global batches and keeps its own slice, so P x K structure holds per rank.
"""
import numpy as np
from torch.utils.data import Sampler

from tripletloss.errors import ConfigError


class _EpochBatches(Sampler):
    """Common part: epoch/resume position and rank slicing. Subclasses implement `global_batches(rng, epoch)`."""

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
        for batch in self.global_batches(rng, epoch):
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

    def global_batches(self, rng, epoch):
        """Return the epoch's global batches (arrays of indices)."""
        order = rng.permutation(self.num_items)
        n = self.num_items // self.global_size
        return [order[i * self.global_size:(i + 1) * self.global_size] for i in range(n)]


def _identity_groups(labels):
    """{label: array of its image indices} for integer `labels`, labels ascending."""
    groups = {}
    for i, label in enumerate(np.asarray(labels)):
        groups.setdefault(int(label), []).append(i)
    return {label: np.array(v) for label, v in sorted(groups.items())}


def _pick(group, k, rng):
    """k images of `group`: distinct when it has k, else all of them plus repeats drawn from them."""
    if len(group) >= k:
        return rng.choice(group, k, replace=False)
    return np.concatenate([rng.permutation(group), rng.choice(group, k - len(group))])


class PKBatches(_EpochBatches):
    """Batches of P identities x K images (per rank). Identities with one image are left out (no positive).

    An identity with fewer than K images contributes all its images plus repeats drawn from them, so sampling
    never stalls. Identities are visited in a shuffled order, each at most once per pass. With `extra_negatives`
    N, each batch ends with N images (per rank) of N distinct identities not in it, one image each (any identity,
    single-image ones included): having no positive in the batch, they can only be negatives (OpenFace).
    """

    def __init__(self, labels, identities_per_batch, images_per_identity, seed, batches_per_epoch=0,
                 rank=0, world_size=1, extra_negatives=0):
        super().__init__(seed, rank, world_size)
        self.all_groups = list(_identity_groups(labels).values())
        self.groups = [g for g in self.all_groups if len(g) >= 2]
        self.singletons = len(self.all_groups) - len(self.groups)
        self.p, self.k = identities_per_batch * world_size, images_per_identity
        self.extra = extra_negatives * world_size
        if len(self.groups) < self.p:
            raise ConfigError(f"identities_per_batch: {len(self.groups)} identities with >= 2 images is fewer than "
                              f"the {self.p} identities one batch needs; lower it or add identities")
        if len(self.all_groups) < self.p + self.extra:
            raise ConfigError(f"extra_negatives: {len(self.all_groups)} identities is fewer than the {self.p} of a "
                              f"batch plus {self.extra} extra negatives")
        usable = sum(len(g) for g in self.groups)
        self.num_batches = batches_per_epoch or max(1, usable // (self.p * self.k))

    def global_batches(self, rng, epoch):
        """Return the epoch's global batches (arrays of P*K indices, identity by identity, then extra negatives)."""
        order, batches = [], []
        for _ in range(self.num_batches):
            if len(order) < self.p:
                order += [g for g in rng.permutation(len(self.groups)) if g not in order]
            chosen, order = order[:self.p], order[self.p:]
            batch = [_pick(self.groups[g], self.k, rng) for g in chosen]
            batches.append(np.concatenate(batch + self._extra(chosen, rng)))
        return batches

    def _extra(self, chosen, rng):
        """One random image each of `self.extra` random identities other than the `chosen` groups ([] if none)."""
        if not self.extra:
            return []
        taken = {int(self.groups[g][0]) for g in chosen}
        others = [g for g in self.all_groups if int(g[0]) not in taken]
        return [rng.choice(others[i], 1) for i in rng.choice(len(others), self.extra, replace=False)]


class PinguoBatches(_EpochBatches):
    """pinguo's batches (its data layer): 3T images = one anchor image T times, T other images of the anchor's
    identity, T images of randomly drawn other identities.

    Anchors walk through the image list in order, continuing across epochs (identities with a single image have
    no positive and are skipped); an epoch is one pass over the anchors unless `batches_per_epoch` is set.
    Positives are distinct (all of them plus repeats when the identity has fewer than T other images); each
    negative is an image of a uniformly drawn other identity, distinct from the other negatives.
    """

    def __init__(self, labels, triplets, seed, batches_per_epoch=0, rank=0, world_size=1):
        super().__init__(seed, rank, world_size)
        self.t, self.labels = triplets, np.asarray(labels)
        self.groups = _identity_groups(labels)
        self.keys = list(self.groups)  # labels, ascending
        self.position = {label: i for i, label in enumerate(self.keys)}
        self.anchors = [i for i, label in enumerate(self.labels) if len(self.groups[int(label)]) >= 2]
        self.singletons = sum(1 for g in self.groups.values() if len(g) < 2)
        if not self.anchors or len(self.groups) < 2:
            raise ConfigError("pinguo batches need an identity with >= 2 images and at least one other identity")
        if len(self.labels) - max(len(g) for g in self.groups.values()) < triplets:
            raise ConfigError(f"pinguo batches need {triplets} negatives: some identity has fewer other images")
        if 3 * triplets % world_size:
            raise ConfigError(f"a pinguo batch of {3 * triplets} images does not split over {world_size} processes")
        self.num_batches = batches_per_epoch or len(self.anchors)

    def global_batches(self, rng, epoch):
        """Return the epoch's global batches: arrays [anchor x T, positives, negatives]."""
        start = epoch * self.num_batches
        return [self._batch(self.anchors[(start + b) % len(self.anchors)], rng) for b in range(self.num_batches)]

    def _batch(self, anchor, rng):
        label = int(self.labels[anchor])
        own, skip = self.groups[label], self.position[label]
        positives = _pick(own[own != anchor], self.t, rng)
        negatives = []
        while len(negatives) < self.t:
            other = int(rng.integers(len(self.keys) - 1))
            group = self.groups[self.keys[other + (other >= skip)]]
            image = int(group[rng.integers(len(group))])
            if image not in negatives:
                negatives.append(image)
        return np.concatenate([np.full(self.t, anchor), positives, negatives])

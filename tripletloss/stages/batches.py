"""Batch sources for the loop: decoded images through a DataLoader, or cached backbone features."""
import numpy as np
import torch

from tripletloss.data.transforms import flip_coin
from tripletloss.data.workers import make_loader


class _SamplerBatches:
    """What both sources share: the epoch position lives in their batch sampler (`self.sampler`)."""

    def set_epoch(self, epoch, start_batch=0):
        """Select the epoch and the batch to start from."""
        self.sampler.set_epoch(epoch, start_batch)

    def __len__(self):
        return len(self.sampler)


class ImageBatches(_SamplerBatches):
    """Yields (images, labels, bad file paths) on `device` for the batches of `sampler` over `dataset`."""

    def __init__(self, dataset, sampler, num_workers, device):
        self.dataset, self.sampler, self.num_workers, self.device = dataset, sampler, num_workers, device

    def __iter__(self):
        # A private generator keeps DataLoader start-up from consuming the global torch RNG (exact resume).
        loader = make_loader(self.dataset, self.num_workers, batch_sampler=self.sampler, generator=torch.Generator(),
                             pin_memory=self.device.type == "cuda")
        for images, labels, _, bad in loader:
            yield images.to(self.device, non_blocking=True), labels.to(self.device), [b for b in bad if b]


class FeatureBatches(_SamplerBatches):
    """Yields ({blob: features}, labels, bad file paths) from cached features (variants x N x F) for the batches.

    Variant 1 (the mirror image) is used where the training flip coin of the sample's seed (the one FaceDataset
    uses) comes up, if `random_flip`; variant 0 (centre crop) otherwise. `bad` maps the index of each image that
    could not be decoded (its features are another image's) to its path.
    """

    def __init__(self, features, blob, labels, sampler, random_flip, device, bad=None):
        self.features, self.blob, self.sampler, self.bad = features.to(device), blob, sampler, bad or {}
        self.labels = torch.as_tensor(np.asarray(labels), device=device)
        self.random_flip = random_flip

    def __iter__(self):
        for batch in self.sampler:
            index = torch.tensor([i for i, _ in batch], device=self.features.device)
            flips = flip_coin([seed for _, seed in batch]) & self.random_flip
            variant = torch.as_tensor(flips.astype(np.int64), device=self.features.device)
            yield ({self.blob: self.features[variant, index]}, self.labels[index],
                   [self.bad[i] for i, _ in batch if i in self.bad])

"""Batch sources for the loop: decoded images through a DataLoader, or cached backbone features."""
import signal

import numpy as np
import torch
from torch.utils.data import DataLoader

from tripletloss.data.transforms import flip_coin


def _leave_stop_signals_to_main(worker_id):
    """DataLoader worker init: ignore SIGINT/SIGTERM, which the main process turns into a checkpoint and a clean exit.

    A signal sent to the whole process group (Ctrl-C, `kill -- -PGID`, a batch scheduler) would otherwise kill the
    workers mid-batch and the main process would die with "DataLoader worker exited unexpectedly".
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


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
        loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=self.num_workers,
                            generator=torch.Generator(), worker_init_fn=_leave_stop_signals_to_main,
                            pin_memory=self.device.type == "cuda")
        # The loader walks the sampler's batches in order: zipped with them, each batch comes with its seeds.
        for (images, labels, index, bad), batch in zip(loader, iter(self.sampler)):
            yield (images.to(self.device, non_blocking=True), self.targets(labels, index, batch),
                   [b for b in bad if b])

    def targets(self, labels, index, batch):
        """What the objective gets as labels: the identity labels (on the device) of the loaded images."""
        return labels.to(self.device)


class TeacherBatches(ImageBatches):
    """ImageBatches whose labels are (labels, teacher descriptors, has_teacher) for distillation.

    `descriptors` (2, N, D) hold the teacher's output for each image's copy and its mirror image; the mirrored
    one is used where the training flip of the sample's seed mirrored the student's input. The rows are those of
    the images actually loaded (an undecodable image's replacement). `has_teacher` (N,) is false for images
    without a teacher copy.
    """

    def __init__(self, dataset, sampler, num_workers, device, descriptors, has_teacher):
        super().__init__(dataset, sampler, num_workers, device)
        self.descriptors, self.has_teacher = descriptors, has_teacher

    def targets(self, labels, index, batch):
        """(labels, the teacher's descriptors of the loaded images as the student saw them, has_teacher)."""
        flips = flip_coin([seed for _, seed in batch]) & self.dataset.random_flip
        descriptors = self.descriptors[torch.as_tensor(flips.astype(np.int64)), index]
        return labels.to(self.device), descriptors.to(self.device), self.has_teacher[index].to(self.device)


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

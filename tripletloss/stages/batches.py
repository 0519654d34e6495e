"""A stage's batches for the loop: images decoded through a DataLoader, images from the decode cache, or cached
backbone features; each batch a `Batch`."""
from typing import NamedTuple

import numpy as np
import torch

from tripletloss.data.dataset import FaceDataset, Replacements
from tripletloss.data.decode_cache import open_decode_cache
from tripletloss.data.transforms import augment_batch, flip_coin
from tripletloss.data.workers import make_loader
from tripletloss.engine import distributed


class Batch(NamedTuple):
    """One training batch, on the device.

    inputs: the images (N, C, H, W), or {layer output name: tensor} of cached features the net continues from;
    labels: (N,) identity labels; bad_files: paths of undecodable images replaced in this batch;
    teacher_descriptors (N, D) and has_teacher (N,) bool: distillation targets (None without a teacher).
    """
    inputs: object
    labels: torch.Tensor
    bad_files: list
    teacher_descriptors: torch.Tensor = None
    has_teacher: torch.Tensor = None


class Batches:
    """What every stage's batches share: iterating yields Batch tuples, and the epoch position lives in their batch
    sampler (`self.sampler`, a data.samplers sampler)."""

    def set_epoch(self, epoch, start_batch=0):
        """Select the epoch and the batch to start from."""
        self.sampler.set_epoch(epoch, start_batch)

    def __len__(self):
        """The batches left in the selected epoch."""
        return len(self.sampler)

    def per_epoch(self):
        """The number of batches in a whole epoch (the same every epoch)."""
        return len(self.sampler.batches(0))


class ImageBatches(Batches):
    """Batches of `sampler` over `dataset` (a FaceDataset), decoded by DataLoader workers, moved to `device`."""

    def __init__(self, dataset, sampler, num_workers, device):
        self.dataset, self.sampler, self.num_workers, self.device = dataset, sampler, num_workers, device

    def __iter__(self):
        # A private generator keeps DataLoader start-up from consuming the global torch RNG (exact resume).
        loader = make_loader(self.dataset, self.num_workers, batch_sampler=self.sampler, generator=torch.Generator(),
                             pin_memory=self.device.type == "cuda")
        # The loader walks the sampler's batches in order: zipped with them, each batch comes with its seeds.
        for (images, labels, index, bad_paths), batch in zip(loader, iter(self.sampler)):
            yield Batch(images.to(self.device, non_blocking=True), labels.to(self.device), [p for p in bad_paths if p],
                        *self.teacher_targets(index, batch))

    def teacher_targets(self, index, batch):
        """The distillation fields of the Batch of dataset rows `index` and sampler `batch`: none here."""
        return ()


class TeacherBatches(ImageBatches):
    """ImageBatches whose Batch also holds the teacher's descriptors, for distillation.

    `descriptors` (2, N, D) hold the teacher's output for each image's copy and its mirror image; the mirrored
    one is used where the training flip of the sample's seed mirrored the student's input. The rows are those of
    the images actually loaded (an undecodable image's replacement). `has_teacher` (N,) is false for images
    without a teacher copy.
    """

    def __init__(self, dataset, sampler, num_workers, device, descriptors, has_teacher):
        super().__init__(dataset, sampler, num_workers, device)
        self.descriptors, self.has_teacher = descriptors, has_teacher

    def teacher_targets(self, index, batch):
        """(the teacher's descriptors of the loaded images as the student saw them, has_teacher), on the device."""
        flips = flip_coin([seed for _, seed in batch]) & self.dataset.random_flip
        descriptors = self.descriptors[torch.as_tensor(flips.astype(np.int64)), index]
        return descriptors.to(self.device), self.has_teacher[index].to(self.device)


class CachedImageBatches(Batches):
    """Batches of `sampler` on `device` from `decoded` = (uint8 resized squares, undecodable flags) of
    data.decode_cache: no decoding and no worker processes; the batch is cropped, flipped and normalised at once
    by transforms.augment_batch, on the device, bit-identical to ImageBatches."""

    def __init__(self, decoded, paths, labels, sampler, preprocess, random_flip, device):
        (self.images, self.undecodable), self.paths = decoded, list(paths)
        self.labels, self.replacements = torch.as_tensor(np.asarray(labels)), Replacements(paths, labels)
        self.sampler, self.preprocess, self.random_flip, self.device = sampler, preprocess, random_flip, device

    def __iter__(self):
        for batch in self.sampler:
            used = [self.replacements.first_good(i, seed, self._usable)[0] for i, seed in batch]
            rows = torch.from_numpy(self.images[used])
            if self.device.type == "cuda":
                rows = rows.pin_memory()  # an asynchronous copy of uint8 rows, a quarter of the float batch
            rows = rows.to(self.device, non_blocking=True)
            seeds = [seed for _, seed in batch]
            yield Batch(augment_batch(rows, seeds, self.preprocess, self.random_flip),
                        self.labels[used].to(self.device), [self.paths[i] for (i, _), u in zip(batch, used) if i != u])

    def _usable(self, index):
        """True for an image that could be decoded, else None (Replacements.first_good's convention)."""
        return None if self.undecodable[index] else True


def training_dataset(paths, labels, preprocess, settings):
    """The FaceDataset of training images decoded one at a time, augmented as the settings say (flip, rotation)."""
    return FaceDataset(paths, labels, preprocess, train=True, random_flip=settings["augment_flip"],
                       random_rotate=settings["random_rotate"])


def image_batches(paths, labels, preprocess, sampler, settings, device, progress=True):
    """A stage's batches over image files: CachedImageBatches with `decode_cache` (the cache built or updated
    first, by the main process first under torchrun), else ImageBatches decoding every epoch.

    random_rotate and per-image standardisation (preprocess["standardize"]) also take the ImageBatches path:
    transforms.augment_batch does neither, and the per-image path is the reference the cache must match bit
    for bit, so these runs decode every epoch (correctness over speed).
    """
    per_image = settings["random_rotate"] or preprocess.get("standardize")
    if per_image or not settings["decode_cache"]:
        return ImageBatches(training_dataset(paths, labels, preprocess, settings), sampler, settings["num_workers"],
                            device)
    decoded = distributed.main_first(open_decode_cache, paths, preprocess, settings["work_dir"],
                                     settings["num_workers"], progress)
    return CachedImageBatches(decoded, paths, labels, sampler, preprocess, settings["augment_flip"], device)


class FeatureBatches(Batches):
    """Batches from cached features (variants x N x F): Batch.inputs is {features_top: features}, the output
    of the frozen layers the net continues from.

    Variant 1 (the mirror image) is used where the training flip coin of the sample's seed (the one FaceDataset
    uses) comes up, if `random_flip`; variant 0 (centre crop) otherwise. `bad_files` maps the index of each image
    that could not be decoded (its features are another image's) to its path.
    """

    def __init__(self, features, features_top, labels, sampler, random_flip, device, bad_files=None):
        self.features, self.features_top, self.sampler = features.to(device), features_top, sampler
        self.bad_files = bad_files or {}
        self.labels = torch.as_tensor(np.asarray(labels), device=device)
        self.random_flip = random_flip

    def __iter__(self):
        for batch in self.sampler:
            index = torch.tensor([i for i, _ in batch], device=self.features.device)
            flips = flip_coin([seed for _, seed in batch]) & self.random_flip
            variant = torch.as_tensor(flips.astype(np.int64), device=self.features.device)
            yield Batch({self.features_top: self.features[variant, index]}, self.labels[index],
                        [self.bad_files[i] for i, _ in batch if i in self.bad_files])

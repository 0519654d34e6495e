"""The training dataset: decodes and augments images, replacing undecodable ones by another of the same identity."""
import numpy as np
from torch.utils.data import Dataset

from tripletloss.data.decode import BadImageError, read_image
from tripletloss.data.transforms import to_input


class Replacements:
    """Picks the stand-in for an undecodable image: another image of the same identity, drawn from the sample's
    augmentation seed, so every batch source (decoding, or the decode cache) replaces it the same way."""

    def __init__(self, paths, labels):
        self.paths, self.labels = list(paths), np.asarray(labels)
        self._by_label = {}
        for i, label in enumerate(self.labels):
            self._by_label.setdefault(int(label), []).append(i)

    def first_good(self, index, seed, load):
        """Return (index used, load(index used)): `index`, or while `load(index)` is None (an unusable image) the
        next replacement drawn from `seed`. Raises BadImageError when the identity has no usable image left."""
        rng, tried = np.random.default_rng(seed), []
        while (loaded := load(index)) is None:
            tried.append(index)
            left = [i for i in self._by_label[int(self.labels[index])] if i not in tried]
            if not left:
                raise BadImageError(f"{self.paths[index]}: no decodable image left for this identity")
            index = int(rng.choice(left))
        return index, loaded


class FaceDataset(Dataset):
    """Images with identity labels. Items are addressed by `(index, seed)` pairs from the batch samplers.

    The seed fixes the augmentation, so a batch is the same whichever worker loads it and after a resume.
    Without `train`, images are centre-cropped.
    `dataset[(i, seed)]` returns (image tensor, label, index actually used, path of a bad file or "").
    """

    def __init__(self, paths, labels, preprocess, train=True, random_flip=True, random_rotate=False):
        self.paths, self.labels = list(paths), np.asarray(labels)
        self.preprocess, self.train, self.random_flip = preprocess, train, random_flip
        self.random_rotate = random_rotate
        self.replacements = Replacements(self.paths, self.labels)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, item):
        first, seed = item if isinstance(item, tuple) else (item, 0)
        index, image = self.replacements.first_good(first, seed, self._decoded)
        tensor = to_input(image, self.preprocess, seed if self.train else None, random_flip=self.random_flip,
                          random_rotate=self.random_rotate)
        return tensor, int(self.labels[index]), index, "" if index == first else self.paths[first]

    def _decoded(self, index):
        """The decoded image at `index`, or None when it cannot be decoded."""
        try:
            return read_image(self.paths[index])
        except BadImageError:
            return None

"""The training dataset: decodes and augments images, replacing undecodable ones by another of the same identity."""
import numpy as np
from torch.utils.data import Dataset

from tripletloss.data.decode import BadImageError, read_image
from tripletloss.data.transforms import to_input


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
        self._by_label = {}
        for i, label in enumerate(self.labels):
            self._by_label.setdefault(int(label), []).append(i)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, 0)
        rng = np.random.default_rng(seed)
        bad, tried = "", []
        while True:
            try:
                image = read_image(self.paths[index])
                break
            except BadImageError:
                bad = bad or self.paths[index]
                tried.append(index)
                index = self._replacement(index, tried, rng)
        tensor = to_input(image, self.preprocess, seed if self.train else None, random_flip=self.random_flip,
                          random_rotate=self.random_rotate)
        return tensor, int(self.labels[index]), index, bad

    def _replacement(self, index, tried, rng):
        """Another image of the same identity not tried yet; raises BadImageError if none is left."""
        left = [i for i in self._by_label[int(self.labels[index])] if i not in tried]
        if not left:
            raise BadImageError(f"{self.paths[index]}: no decodable image left for this identity")
        return int(rng.choice(left))

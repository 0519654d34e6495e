"""Helpers shared by the evaluation tests: PNG checks and a stand-in embedder for pure-logic tests."""
from pathlib import Path

import cv2
import numpy as np


def assert_png_drawn(path):
    """Assert `path` is a PNG that decodes to a non-blank image (its pixels are not all one value)."""
    path = Path(path)
    assert path.is_file() and path.stat().st_size > 0, path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.size > 0, path
    assert image.std() > 1.0, f"{path} is blank"


class IdentityEmbedder:
    """Stand-in with the Embedder interface: embeds an image as its identity folder's one-hot + small noise.

    Records the paths of every embed_paths call, so tests can check what was embedded.
    """

    def __init__(self, identities, noise=0.05, seed=0):
        self.index = {name: k for k, name in enumerate(sorted(identities))}
        self.noise, self.rng, self.calls = noise, np.random.default_rng(seed), []

    def embed_paths(self, paths, batch_size=64, flip=False, progress=True):
        """Return (N, D) float32 L2-normalised embeddings of `paths`."""
        self.calls.append(list(paths))
        emb = np.zeros((len(paths), len(self.index)), dtype=np.float32)
        for row, p in enumerate(paths):
            emb[row, self.index[Path(p).parent.name]] = 1.0
        emb += self.noise * self.rng.standard_normal(emb.shape).astype(np.float32)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    def embed_faces(self, paths, flip=False, progress=True):
        """Return (embed_paths(paths), all-True found mask): every stand-in image has a face."""
        return self.embed_paths(paths, flip=flip), np.ones(len(paths), dtype=bool)

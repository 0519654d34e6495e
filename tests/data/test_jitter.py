"""Test-time jitter (dlib's num_jitters): near-identity random crops, and embeddings averaged over them."""
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tripletloss.data.jitter import jitter_crops
from tripletloss.data.transforms import to_input
from tripletloss.inference import Embedder
from tripletloss.net import build_net


def dot_image(size=150, x=105, y=60):
    """A black square image with one bright 5x5 spot at (x, y), off the vertical axis so mirroring moves it."""
    image = np.zeros((size, size, 3), np.uint8)
    image[y - 2:y + 3, x - 2:x + 3] = 255
    return image


def spot(image):
    """The (x, y) centroid of the bright pixels of an image."""
    ys, xs = np.nonzero(image[..., 0] > 60)
    return np.array([xs.mean(), ys.mean()])


def test_crops_move_the_face_a_little_mirror_half_and_repeat_per_key():
    image = dot_image()
    crops = jitter_crops(image, 40, "a/b.png")
    assert all(c.shape == image.shape and c.dtype == np.uint8 for c in crops)
    at, mirrored_at = np.array([105.0, 60.0]), np.array([149 - 105.0, 60.0])
    moved = [min(np.abs(spot(c) - at).max(), np.abs(spot(c) - mirrored_at).max()) for c in crops]
    mirrored = [np.abs(spot(c) - mirrored_at).max() < np.abs(spot(c) - at).max() for c in crops]
    assert max(moved) < 7 and np.mean(moved) > 0.5         # 2 % shift, 3 % scale, 3 degrees: a few pixels
    assert 10 <= sum(mirrored) <= 30
    assert all(np.array_equal(a, b) for a, b in zip(crops, jitter_crops(image, 40, "a/b.png")))
    assert not np.array_equal(crops[0], jitter_crops(image, 1, "a/c.png")[0])


def test_embedding_with_jitter_is_the_mean_over_the_jittered_copies(tmp_path):
    (tmp_path / "net.yaml").write_text("input: {channels: 3, size: 8}\n"
                                       "layers:\n  - {name: f, type: fc, num_output: 4}\noutputs: {embedding: f}\n")
    torch.manual_seed(0)
    net = build_net(tmp_path / "net.yaml")
    preprocess = {"size": 8, "resize": 8, "mean": [127.5] * 3, "std": [128.0] * 3}
    rng = np.random.default_rng(0)
    paths = [tmp_path / f"{k}.png" for k in range(3)]
    for path in paths:
        cv2.imwrite(str(path), cv2.resize(rng.integers(0, 255, (4, 4, 3), np.uint8), (24, 24)))
    got = Embedder(net, preprocess, torch.device("cpu"), jitter=3).embed_paths(paths, batch_size=4, progress=False)
    for path, row in zip(paths, got):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        batch = torch.stack([to_input(c, preprocess) for c in jitter_crops(image, 3, path)])
        with torch.no_grad():
            want = F.normalize(F.normalize(net(batch, ["embedding"])["embedding"], dim=1).sum(0), dim=0)
        np.testing.assert_allclose(row, want.numpy(), atol=1e-6)
    plain = Embedder(net, preprocess, torch.device("cpu")).embed_paths(paths, progress=False)
    assert np.abs(plain - got).max() > 1e-3
    with_flip = Embedder(net, preprocess, torch.device("cpu"), jitter=3).embed_paths(paths, flip=True, progress=False)
    assert with_flip.shape == got.shape and np.abs(with_flip - got).max() > 1e-4

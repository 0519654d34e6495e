"""Test-time jitter as dlib's `num_jitters` (compute_face_descriptor): random near-identity crops of a face chip.

dlib's jitter_image (dlib/image_transforms/interpolation.h) takes the chip's rectangle shrunk by 3 px, moves its
centre by up to 2 % of its side, enlarges it by a factor 1/U(0.97, 0.99999), rotates it by up to 3 degrees,
resamples it at the chip's size (bilinear, 0 outside the image) and mirrors half of the crops. The descriptor
is then the mean over the crops (the unjittered chip is not among them). The random numbers differ from dlib's
(its own generator); each image's crops here are drawn from a seed derived from its path, so they do not depend
on batching or order.
"""
import zlib

import numpy as np

from tripletloss.data.warp import affine_from_3, sample_bilinear

MAX_ROTATION_DEGREES = 3.0
SCALE_RANGE = (0.97, 0.99999)
TRANSLATE = 0.02


def jitter_crop(image, rng):
    """Return one jittered (H, W[, C]) uint8 copy of a square uint8 image, drawn with numpy Generator `rng`."""
    size = image.shape[0]
    side = size - 6                                            # shrink_rect(get_rect(img), 3)
    shift = rng.uniform(-TRANSLATE, TRANSLATE, size=2) * side
    box = int(side / rng.uniform(*SCALE_RANGE))
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    centre = np.full(2, (size - 1) / 2.0) + np.round(shift)
    half = (box - 1) / 2.0
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = np.array([[-half, -half], [half, -half], [-half, half]]) @ rot.T + centre
    chip = np.array([[0, 0], [size - 1, 0], [0, size - 1]], np.float64)
    crop = sample_bilinear(image, affine_from_3(chip, corners), size)
    return crop[:, ::-1] if rng.random() > 0.5 else crop


def jitter_crops(image, count, key):
    """Return `count` jittered copies of a square uint8 image, seeded by the string `key` (e.g. its path)."""
    rng = np.random.default_rng(zlib.crc32(str(key).encode()))
    return [np.ascontiguousarray(jitter_crop(image, rng)) for _ in range(count)]

"""Turning decoded images into network input: centre crop, resize, (random) crop, flip, normalisation.

A `preprocess` dict describes what a network expects; checkpoints carry it, so evaluation feeds images exactly as
training did. Keys: size (network input), resize, crop_fraction, mean and std (per RGB channel, in 0..255 pixel
units), `standardize` (True: each image by its own mean and std instead, facenet's prewhiten), and for imported
networks `template`: the alignment their faces need (`align --landmarks TEMPLATE`).
"""
import cv2
import numpy as np
import torch

from tripletloss.errors import UserError


def make_preprocess(settings):
    """Return the preprocess dict for the training settings (image_size, resize_size, crop_fraction,
    per_image_standardization)."""
    return {"size": settings["image_size"], "resize": settings["resize_size"],
            "crop_fraction": settings["crop_fraction"], "mean": [127.5] * 3, "std": [128.0] * 3,
            "standardize": settings["per_image_standardization"]}


def inherit_preprocess(saved, settings, source):
    """Preprocess for training on from a checkpoint: its normalisation (standardisation included), the settings'
    sizes and crop.

    `saved` is the checkpoint's preprocess dict; raises UserError naming `source` if its input size differs.
    """
    if saved["size"] != settings["image_size"]:
        raise UserError(f"{source}: the network expects {saved['size']} px input but image_size is "
                        f"{settings['image_size']} (set image_size={saved['size']})")
    return dict(make_preprocess(settings), mean=saved["mean"], std=saved["std"],
                standardize=saved.get("standardize", False))


def _centre_square(image, fraction):
    h, w = image.shape[:2]
    side = int(round(min(h, w) * fraction))
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def flip_coin(seeds):
    """The training flip of samples with these augmentation seeds (int or int array): their lowest bit.

    Seeds are uniform 63-bit integers, so this is a fair coin; the cached-feature path of stage 2 uses the same
    function, so both paths mirror the same samples.
    """
    return np.asarray(seeds) & 1 == 1


def rotate(image, seed, degrees=10.0):
    """`image` rotated about its centre by an angle uniform in +-`degrees` drawn from `seed` (facenet's
    random_rotate_image: bicubic, black corners)."""
    angle = np.random.default_rng([seed, 1]).uniform(-degrees, degrees)
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)


def _normalise(image, preprocess):
    """float32 (H, W, C): (image - mean) / std, per channel, or per image with preprocess["standardize"]."""
    image = image.astype(np.float32)
    if preprocess.get("standardize"):
        return (image - image.mean()) / max(float(image.std()), 1 / np.sqrt(image.size))
    mean, std = (np.asarray(preprocess[key], np.float32) for key in ("mean", "std"))
    return (image - mean) / std


def to_input(image, preprocess, seed=None, random_flip=True, random_rotate=False):
    """Return the (C, size, size) float32 tensor for an RGB uint8 `image`.

    With an augmentation `seed` (training), the crop position is drawn from it, the image is rotated by up to
    +-10 degrees if `random_rotate` and, if `random_flip`, mirrored when `flip_coin(seed)`; without, the crop is
    central and the image is not rotated or mirrored (its mirror image is the tensor flipped along its last axis:
    see tripletloss.inference.batch_outputs).
    """
    size, resize = preprocess["size"], preprocess["resize"]
    image = _centre_square(image, preprocess.get("crop_fraction", 1.0))
    image = cv2.resize(image, (resize, resize), interpolation=cv2.INTER_AREA if image.shape[0] > resize
                       else cv2.INTER_LINEAR)
    if seed is not None and random_rotate:
        image = rotate(image, seed)
    flip = seed is not None and random_flip and bool(flip_coin(seed))
    if seed is not None:
        top, left = (int(v) for v in np.random.default_rng(seed).integers(0, resize - size + 1, size=2))
    else:
        top = left = (resize - size) // 2
    image = image[top:top + size, left:left + size]
    if flip:
        image = image[:, ::-1]
    out = _normalise(image, preprocess)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))

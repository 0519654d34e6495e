"""Turning decoded images into network input: centre crop, resize, (random) crop, flip, normalisation
(image by image, or a batch of cached resized squares at once).

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


def resized_square(image, preprocess):
    """The centre square (crop_fraction of the shorter side) of RGB uint8 `image`, resized to preprocess's
    `resize`: the deterministic part of to_input, which the decode cache (data.decode_cache) stores."""
    resize = preprocess["resize"]
    image = _centre_square(image, preprocess.get("crop_fraction", 1.0))
    return cv2.resize(image, (resize, resize), interpolation=cv2.INTER_AREA if image.shape[0] > resize
                      else cv2.INTER_LINEAR)


def crop_offsets(seed, resize, size):
    """(top, left) of the random `size` crop of a `resize` square for augmentation `seed`."""
    return tuple(int(v) for v in np.random.default_rng(seed).integers(0, resize - size + 1, size=2))


def to_input(image, preprocess, seed=None, random_flip=True, random_rotate=False):
    """Return the (C, size, size) float32 tensor for an RGB uint8 `image`.

    With an augmentation `seed` (training), the crop position is drawn from it, the image is rotated by up to
    +-10 degrees if `random_rotate` and, if `random_flip`, mirrored when `flip_coin(seed)`; without, the crop is
    central and the image is not rotated or mirrored (its mirror image is the tensor flipped along its last axis:
    see tripletloss.inference.batch_outputs).
    """
    size, resize = preprocess["size"], preprocess["resize"]
    image = resized_square(image, preprocess)
    if seed is not None and random_rotate:
        image = rotate(image, seed)
    flip = seed is not None and random_flip and bool(flip_coin(seed))
    top, left = crop_offsets(seed, resize, size) if seed is not None else ((resize - size) // 2,) * 2
    image = image[top:top + size, left:left + size]
    if flip:
        image = image[:, ::-1]
    out = _normalise(image, preprocess)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


def augment_batch(images, seeds, preprocess, random_flip=True):
    """Crop, flip and normalise a batch of resized squares as to_input does with these seeds, bit for bit
    (without rotation, and with per-channel mean and std: stages.batches.image_batches sends runs with
    random_rotate or preprocess["standardize"] through to_input instead).

    `images`: (B, resize, resize, 3) uint8 tensor on any device (rows of the decode cache); `seeds`: the B
    augmentation seeds. Returns a (B, 3, size, size) float32 tensor on the same device, in channels_last memory
    layout (the convolutions' fastest on CPU): one copy per crop, then whole-batch torch operations.
    """
    size, resize, device = preprocess["size"], preprocess["resize"], images.device
    offsets = [crop_offsets(s, resize, size) for s in seeds]
    crops = torch.stack([images[b, top:top + size, left:left + size] for b, (top, left) in enumerate(offsets)])
    flip = torch.as_tensor(flip_coin(seeds) & random_flip, device=device)
    crops[flip] = crops[flip].flip(2)
    mean, std = (torch.tensor(preprocess[key], dtype=torch.float32, device=device) for key in ("mean", "std"))
    return ((crops.float() - mean) / std).permute(0, 3, 1, 2)

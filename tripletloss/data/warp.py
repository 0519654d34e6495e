"""Resampling an image through an affine map exactly as dlib does (dlib/image_transforms/interpolation.h):
float64 bilinear weights, the result truncated to uint8, and 0 wherever a sample's 2x2 neighbourhood leaves the
image. Used by dlib's face chip (tripletloss.prepare.chip) and by test-time jitter (tripletloss.data.jitter).
"""
import numpy as np


def affine_from_3(src, dst):
    """The exact 2x3 affine matrix taking three points src (3,2) onto dst (3,2), in float64."""
    a = np.hstack([src, np.ones((3, 1))])
    return np.linalg.solve(a, dst).T


def sample_bilinear(image, matrix, size):
    """Sample image (H,W[,C]) uint8 at matrix @ (x, y, 1) for every chip pixel of a size x size grid.

    dlib's interpolate_bilinear: float64 weights, the result truncated to uint8, and 0 wherever the 2x2
    neighbourhood of the sample point is not entirely inside the image.
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    px = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    py = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    left, top = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
    inside = (left >= 0) & (top >= 0) & (left + 1 < image.shape[1]) & (top + 1 < image.shape[0])
    left, top = np.where(inside, left, 0), np.where(inside, top, 0)
    fx, fy = px - left, py - top
    if image.ndim == 3:
        fx, fy, inside = fx[..., None], fy[..., None], inside[..., None]
    img = image.astype(np.float64)
    value = ((1 - fy) * ((1 - fx) * img[top, left] + fx * img[top, left + 1])
             + fy * ((1 - fx) * img[top + 1, left] + fx * img[top + 1, left + 1]))
    return np.where(inside, np.clip(value, 0, 255), 0).astype(np.uint8)

"""dlib's aligned face chip (dlib.get_face_chip) from 5-point landmarks, reimplemented with numpy.

Follows dlib/image_transforms/interpolation.h: get_face_chip_details maps dlib's 5-point template (scaled by
size and padding) onto the landmarks with a least-squares similarity transform (Umeyama), keeps its rotation and
scale as an angle plus a centred extraction rectangle, and extract_image_chip maps the chip's corners onto that
rotated rectangle and samples the image bilinearly (tripletloss.data.warp).
"""
import numpy as np

from tripletloss.data.warp import affine_from_3, sample_bilinear

#: dlib's 5-point face template in [0, 1] chip coordinates, in shape_predictor_5_face_landmarks order:
#: right eye outer, right eye inner, left eye outer, left eye inner (image left/right), nose base.
FACE_TEMPLATE_5 = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
])


def similarity_transform(src, dst):
    """Least-squares similarity (rotation, uniform scale, translation) taking points src (N,2) onto dst (N,2).

    Umeyama's method as in dlib's find_similarity_transform. Returns (m, t): a 2x2 matrix and a 2-vector with
    dst ~= src @ m.T + t.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mean_src, mean_dst = src.mean(0), dst.mean(0)
    var_src = ((src - mean_src) ** 2).sum(1).mean()
    cov = (dst - mean_dst).T @ (src - mean_src) / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    if np.linalg.det(cov) < 0 or (np.linalg.det(cov) == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        s[1, 1] = -1
    rot = u @ s @ vt
    scale = np.trace(np.diag(d) @ s) / var_src if var_src else 1.0
    return scale * rot, mean_dst - scale * rot @ mean_src


def chip_to_image(landmarks, size=150, padding=0.25):
    """The 2x3 affine matrix taking chip pixel (x, y) to image (x, y) for dlib's face chip of these 5 landmarks.

    landmarks: (5, 2) array of (x, y) in shape_predictor_5_face_landmarks order. Mirrors get_face_chip_details
    (angle + centred rectangle of side size*scale, corners size-1 apart) then get_mapping_to_chip.
    """
    template = (padding + FACE_TEMPLATE_5) / (2 * padding + 1) * size
    m, t = similarity_transform(template, landmarks)
    angle = np.arctan2(m[1, 0], m[0, 0])
    scale = np.hypot(m[0, 0], m[1, 0])
    centre = m @ np.array([size / 2.0, size / 2.0]) + t
    half = (size * scale - 1) / 2
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    corners = np.array([[-half, -half], [half, -half], [-half, half]]) @ rot.T + centre  # tl, tr, bl
    chip = np.array([[0, 0], [size - 1, 0], [0, size - 1]], np.float64)
    return affine_from_3(chip, corners)


def extract_chip(image, landmarks, size=150, padding=0.25):
    """dlib's aligned face chip: image (H,W) or (H,W,C) uint8 and 5 landmarks -> (size, size[, C]) uint8 chip.

    Same geometry and sampling as dlib.get_face_chip(img, shape, size, padding) whenever the face region is at
    most twice the chip's side (dlib first shrinks larger regions with an image pyramid; this does not).
    """
    return sample_bilinear(np.asarray(image), chip_to_image(landmarks, size, padding), size)


def dlib_chip_150(image, landmarks):
    """The `dlib_chip_150` alignment template: RGB uint8 image (H,W,3) + dlib 5-point landmarks (5,2) -> the
    150x150x3 uint8 chip (padding 0.25) that dlib's face-recognition ResNet expects."""
    return extract_chip(image, landmarks, size=150, padding=0.25)

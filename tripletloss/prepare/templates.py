"""Named alignment templates: which landmarks go where in the aligned output image.

A template is a set of landmark indices (of a dlib shape predictor with `num_points` points) and, for each, a
target position in normalised coordinates (0..1 across the output square). `target_points` scales them to pixels.

OpenFace templates (align-dlib.py). OpenFace's TEMPLATE is the mean position of the 68 dlib landmarks over
a face set; MINMAX_TEMPLATE rescales it so that the landmarks' bounding box spans the unit square:
    normalised = (mean - min) / (max - min), min/max taken over all 68 points per axis.
The extremes are x: point 0 (0.0792397) .. point 16 (0.9711933); y: point 24 (0.1823610) .. point 8 (1.0608037).
Mean positions used here and their normalised values (x, y):
    36 outer left eye   (0.2524187, 0.3310523) -> (0.194157, 0.169267)
    39 inner left eye   (0.4037190, 0.3386771) -> (0.363785, 0.177947)
    42 inner right eye  (0.6313261, 0.3341367) -> (0.618963, 0.172778)
    45 outer right eye  (0.7828654, 0.3213053) -> (0.788859, 0.158171)
    33 nose tip         (0.5207129, 0.6342682) -> (0.494951, 0.514441)
    57 bottom lip       (0.5253984, 0.8417064) -> (0.500204, 0.750584)
At 96 px, innerEyesAndBottomLip puts the inner eye corners at (34.9, 17.1), (59.4, 16.6), the lip at (48.0, 72.1).
"""
from dataclasses import dataclass

import numpy as np

from tripletloss.errors import UserError
from tripletloss.prepare.chip import FACE_TEMPLATE_5, dlib_chip_150


@dataclass(frozen=True)
class Template:
    """Landmark indices (for a `num_points` dlib predictor) and their normalised target positions."""
    name: str
    num_points: int
    indices: tuple
    points: tuple
    default_size: int = 96
    warp: object = None  # a function (image_rgb, landmarks) -> aligned image, for templates with their own warp


TEMPLATES = {t.name: t for t in (
    Template("innerEyesAndBottomLip", 68, (39, 42, 57),
             ((0.363785, 0.177947), (0.618963, 0.172778), (0.500204, 0.750584))),
    Template("outerEyesAndNose", 68, (36, 45, 33),
             ((0.194157, 0.169267), (0.788859, 0.158171), (0.494951, 0.514441))),
    # dlib's 150x150 face chip (padding 0.25) from the 5-point landmarks, the input of dlib's face ResNet.
    Template("dlib_chip_150", 5, (0, 1, 2, 3, 4), tuple(map(tuple, (FACE_TEMPLATE_5 + 0.25) / 1.5)),
             default_size=150, warp=dlib_chip_150),
)}


def get_template(name):
    """Return the Template called `name`; UserError listing the known names otherwise."""
    if name not in TEMPLATES:
        raise UserError(f"unknown landmark template {name!r} (choose from {', '.join(TEMPLATES)})")
    return TEMPLATES[name]


def target_points(template, size, margin=0):
    """Return a float32 (k, 2) array: the template's targets in pixels for a `size` square output.

    With `margin` > 0 the template is fitted into the inner (size - 2*margin) square, leaving that many pixels
    of extra context on every side.
    """
    inner = size - 2 * margin
    if inner <= 0:
        raise UserError(f"--margin {margin} leaves no room in a {size} px output")
    return (margin + inner * np.asarray(template.points, dtype=np.float64)).astype(np.float32)

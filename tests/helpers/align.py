"""Alignment test helpers: a symlinked celeba_subset slice, finished outputs, landmark errors on aligned faces."""
import cv2
import dlib
import numpy as np

from tripletloss.data.folders import identity_dirs, image_files
from tripletloss.prepare.align import landmarks
from tripletloss.prepare.detectors import load_detector
from tripletloss.prepare.landmarks import load_predictor
from tripletloss.prepare.templates import target_points


def make_subset(celeba_dir, raw, identities, per_identity):
    """Symlink `per_identity` images of every k-th identity of celeba_subset into raw/<identity>/."""
    dirs = identity_dirs(celeba_dir)
    step = max(1, len(dirs) // identities)
    files = []
    for d in dirs[::step][:identities]:
        (raw / d.name).mkdir(parents=True)
        for src in image_files(d)[:per_identity]:
            (raw / d.name / src.name).symlink_to(src)
            files.append(raw / d.name / src.name)
    return files


def finished(out):
    """Finished outputs under out/<identity>/ (temp files of an interrupted write start with a dot)."""
    return sorted(p for p in out.glob("*/*.png") if not p.name.startswith("."))


def measured_landmarks(detector, predictor, image, pad):
    """Landmarks found on an aligned image: dlib's detector on a border-padded copy, else the full frame."""
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    faces = detector(padded, 1)
    if len(faces):
        return landmarks(predictor, padded, max(faces, key=lambda r: r.area())) - pad
    return landmarks(predictor, image, dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1))


def landmark_errors(out_files, template, size):
    """Mean distance (px) between the template landmarks found on each aligned image and their targets."""
    detector, predictor = load_detector(), load_predictor(template.num_points)
    targets = target_points(template, size)
    errors = []
    for path in out_files:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        found = measured_landmarks(detector, predictor, image, size // 2)
        errors.append(np.linalg.norm(found[list(template.indices)] - targets, axis=1).mean())
    return np.array(errors)

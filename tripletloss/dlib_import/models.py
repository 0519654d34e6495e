"""Paths of the dlib model files shipped by the face-recognition-models package (found without importing it)."""
import importlib.util
from pathlib import Path

from tripletloss.errors import UserError

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARKS_5_FILE = "shape_predictor_5_face_landmarks.dat"


def dlib_model_path(filename):
    """Return the Path of `filename` in face_recognition_models/models; UserError when the package or file is absent.

    The package is located with importlib rather than imported (its __init__ needs pkg_resources).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{filename}: package face-recognition-models is not installed (pip install "
                        "face-recognition-models), or pass the file's path explicitly")
    path = Path(spec.submodule_search_locations[0]) / "models" / filename
    if not path.is_file():
        raise UserError(f"{path}: not found in the face-recognition-models package")
    return path

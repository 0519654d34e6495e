"""dlib's HOG face detector + 5-point shape predictor: the landmarks that dlib_chip_150 aligns to (needs dlib)."""
import numpy as np

from tripletloss.dlib_import.models import LANDMARKS_5_FILE, dlib_model_path


class Landmarker:
    """Finds the largest face in an RGB or greyscale uint8 image and returns its 5 dlib landmarks."""

    def __init__(self, predictor_path=None, upsample=1):
        import dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor_path or dlib_model_path(LANDMARKS_5_FILE)))
        self.upsample = upsample

    def __call__(self, image):
        """Return a (5, 2) float array of (x, y) landmarks of the largest detected face, or None when none is found."""
        faces = self.detector(image, self.upsample)
        if not faces:
            return None
        face = max(faces, key=lambda r: r.area())
        shape = self.predictor(image, face)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

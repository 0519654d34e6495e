"""align's face-finding options on real celeba_subset photos: CNN / auto detectors, --skip-multi, --fallback."""
import cv2
import numpy as np
import pytest

from tests.helpers.align import finished, landmark_errors, make_subset
from tripletloss.cli import main
from tripletloss.data.decode import read_image
from tripletloss.errors import UserError
from tripletloss.prepare.align import (
    FALLBACK_NOTE,
    REPORT_NAME,
    AlignOptions,
    align_dataset,
    align_image,
    centre_box,
    read_report,
)
from tripletloss.prepare.detectors import load_detector
from tripletloss.prepare.landmarks import load_predictor
from tripletloss.prepare.templates import get_template

pytest.importorskip("dlib")
TEMPLATE = get_template("innerEyesAndBottomLip")
#: A celeba_subset photo (a face in profile) on which dlib's HOG detector finds nothing at upsample 1 or 2.
HOG_MISS = "celeb_07209/celeb_07209_0019.jpg"


class NoFace:
    """A detector that never finds a face (to force the fallback on photos whose face it would find)."""

    def __call__(self, image_rgb, upsample):
        return []

    def tried(self, upsample):
        return "nothing"


def test_auto_runs_the_cnn_only_where_hog_finds_nothing(celeba_dir):
    miss, hit = read_image(celeba_dir / HOG_MISS), read_image(celeba_dir / "celeb_07209/celeb_07209_0001.jpg")
    hog, auto = load_detector("hog"), load_detector("auto")
    assert hog(miss, 1) == [] and len(hog(hit, 1)) == 1
    assert auto(hit, 1) == hog(hit, 1)                       # HOG's own box: the CNN did not run
    (face,) = auto(miss, 1)
    assert (face.left() + face.right()) / 2 == pytest.approx(125, abs=40) and face.width() > 60
    assert auto.tried(1) == "HOG at upsample 1 and 2, CNN at upsample 1" and hog.tried(1) == "upsample 1 and 2"
    with pytest.raises(UserError, match="unknown face detector 'mtcnn'"):
        load_detector("mtcnn")


def test_cnn_detector_aligns_faces_onto_the_template(celeba_dir, tmp_path):
    files = make_subset(celeba_dir, tmp_path / "raw", identities=3, per_identity=1)
    options = AlignOptions(TEMPLATE, detector="cnn", upsample=0)
    summary = align_dataset(tmp_path / "raw", tmp_path / "out", options, progress=False)
    assert summary.aligned == len(files) and not summary.failed and not summary.fallbacks
    assert landmark_errors(finished(tmp_path / "out"), TEMPLATE, 96).mean() < 3.0


def test_centred_fallback_box_aligns_centred_faces(celeba_dir, tmp_path):
    # celeba_subset's photos are centred on a face (dlib box x 2.3, as LFW): the default box lands the landmarks.
    box = centre_box((250, 250, 3), AlignOptions(TEMPLATE).fallback_size)
    assert (box.left(), box.top(), box.width(), box.height()) == (70, 70, 110, 110)
    predictor, options = load_predictor(68), AlignOptions(TEMPLATE, fallback="center")
    for k, path in enumerate(make_subset(celeba_dir, tmp_path / "raw", identities=8, per_identity=1)):
        face, note = align_image(read_image(path), NoFace(), predictor, options)
        assert note == FALLBACK_NOTE.format(0.44)
        cv2.imwrite(str(tmp_path / f"{k}.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    errors = landmark_errors(sorted(tmp_path.glob("*.png")), TEMPLATE, 96)
    assert np.median(errors) < 3.0, errors
    without = align_image(read_image(path), NoFace(), predictor, AlignOptions(TEMPLATE))
    assert without == (None, "no face found (nothing)")


def test_fallback_outputs_are_reported_and_kept_in_the_report_on_resume(celeba_dir, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    files = make_subset(celeba_dir, raw, identities=1, per_identity=2)
    (raw / "blank").mkdir()
    blank = raw / "blank" / "grey.jpg"
    cv2.imwrite(str(blank), np.full((250, 250, 3), 128, np.uint8))
    summary = align_dataset(raw, out, AlignOptions(TEMPLATE, detector="auto", fallback="center"), progress=False)
    note = FALLBACK_NOTE.format(0.44)
    assert summary.aligned == len(files) + 1 and summary.failed == [] and summary.fallbacks == [(str(blank), note)]
    assert (out / "blank" / "grey.png").is_file()
    assert read_report(out / REPORT_NAME) == [(str(blank), note)]
    again = align_dataset(raw, out, AlignOptions(TEMPLATE), progress=False)    # resumed without --fallback
    assert again.skipped == len(files) + 1 and read_report(out / REPORT_NAME) == [(str(blank), note)]
    (out / "blank" / "grey.png").unlink()
    again = align_dataset(raw, out, AlignOptions(TEMPLATE), progress=False)
    assert read_report(out / REPORT_NAME) == [(str(blank), "no face found (upsample 1 and 2)")]


def test_skip_multi_skips_a_photo_of_two_people(celeba_dir, tmp_path):
    left, right = (read_image(f) for f in make_subset(celeba_dir, tmp_path / "src", identities=2, per_identity=1))
    (tmp_path / "raw" / "pair").mkdir(parents=True)
    two = tmp_path / "raw" / "pair" / "two.png"
    cv2.imwrite(str(two), cv2.cvtColor(np.hstack([left, right]), cv2.COLOR_RGB2BGR))
    summary = align_dataset(tmp_path / "raw", tmp_path / "all", AlignOptions(TEMPLATE), progress=False)
    assert summary.aligned == 1                                 # by default: the larger of the two faces
    summary = align_dataset(tmp_path / "raw", tmp_path / "one", AlignOptions(TEMPLATE, skip_multi=True),
                            progress=False)
    assert summary.aligned == 0 and summary.failed == [(str(two), "2 faces found (--skip-multi)")]
    assert read_report(tmp_path / "one" / REPORT_NAME) == summary.failed


def test_align_command_takes_the_options_and_rejects_a_bad_fallback_size(celeba_dir, tmp_path, capsys):
    make_subset(celeba_dir, tmp_path / "raw", identities=1, per_identity=1)
    argv = ["align", str(tmp_path / "raw"), str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_bad:
        main(argv + ["--fallback", "center", "--fallback-size", "1.5"])
    assert exit_bad.value.code == 2 and not (tmp_path / "out").exists()
    assert capsys.readouterr().err == "error: --fallback-size 1.5: must be in (0, 1], a fraction of the image side\n"
    with pytest.raises(SystemExit) as exit_ok:
        main(argv + ["--detector", "auto", "--skip-multi", "--fallback", "center"])
    out = capsys.readouterr().out
    assert exit_ok.value.code == 0 and "1 aligned now" in out and "0 of the outputs from the fallback box" in out

"""dlib alignment on real celeba_subset faces: landmark positions on the output, report, resume after SIGKILL."""
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tests.helpers.align import finished, landmark_errors, make_subset, measured_landmarks
from tripletloss import ROOT
from tripletloss.data.folders import identity_dirs, image_files
from tripletloss.errors import UserError
from tripletloss.prepare.align import (
    REPORT_NAME,
    AlignOptions,
    align_dataset,
    align_face,
)
from tripletloss.prepare.check import check_file
from tripletloss.prepare.detectors import load_detector
from tripletloss.prepare.landmarks import load_predictor, require_dlib
from tripletloss.prepare.templates import (
    TEMPLATES,
    Template,
    get_template,
    target_points,
)

dlib = pytest.importorskip("dlib")


def test_template_targets_scale_with_size_and_margin():
    t = get_template("innerEyesAndBottomLip")
    assert t.indices == (39, 42, 57)
    assert get_template("outerEyesAndNose").indices == (36, 45, 33)
    at96 = target_points(t, 96)
    np.testing.assert_allclose(at96, [[34.92, 17.08], [59.42, 16.59], [48.02, 72.06]], atol=0.01)
    np.testing.assert_allclose(target_points(t, 96, margin=8), 8 + at96 * 80 / 96, atol=1e-4)
    for template in TEMPLATES.values():
        assert np.all((target_points(template, 96) > 0) & (target_points(template, 96) < 96))
    with pytest.raises(UserError, match="unknown landmark template"):
        get_template("noseOnly")


@pytest.mark.parametrize("name, identities, per_identity, workers",
                         [("innerEyesAndBottomLip", 20, 3, 2), ("outerEyesAndNose", 10, 2, 1)])
def test_aligned_subset_has_landmarks_on_template(celeba_dir, tmp_path, name, identities, per_identity, workers):
    raw = tmp_path / "raw"
    files = make_subset(celeba_dir, raw, identities, per_identity)
    blank = raw / files[0].parent.name / "zz_blank.jpg"
    cv2.imwrite(str(blank), np.full((250, 250, 3), 128, np.uint8))
    template = get_template(name)
    summary = align_dataset(raw, tmp_path / "out", AlignOptions(template), workers=workers, progress=False)
    assert summary.total == len(files) + 1
    assert summary.failed == [(str(blank), "no face found (upsample 1 and 2)")]
    report = (tmp_path / "out" / REPORT_NAME).read_text().splitlines()
    assert report == ["path\treason", f"{blank}\tno face found (upsample 1 and 2)"]
    outputs = finished(tmp_path / "out")
    assert summary.aligned == len(outputs) >= 0.97 * len(files)
    assert {p.stem for p in outputs} <= {f.stem for f in files}
    assert all(cv2.imread(str(p)).shape == (96, 96, 3) for p in outputs)
    errors = landmark_errors(outputs, template, 96)
    assert errors.mean() < 2.5 and np.median(errors) < 1.5, errors


def test_five_point_template_uses_least_squares_fit(celeba_dir, tmp_path):
    # dlib's 5-point model: 0/1 outer/inner corner of one eye, 2/3 outer/inner of the other, 4 below the nose.
    eyes = get_template("outerEyesAndNose").points[:2] + get_template("innerEyesAndBottomLip").points[:2]
    five = Template("eyeCorners5", 5, (0, 1, 2, 3), (eyes[1], eyes[3], eyes[0], eyes[2]))
    files = make_subset(celeba_dir, tmp_path / "raw", identities=5, per_identity=2)
    summary = align_dataset(tmp_path / "raw", tmp_path / "out", AlignOptions(five, ext="jpg"), progress=False)
    assert summary.aligned == len(files)
    detector, predictor = load_detector(), load_predictor(68)
    as68 = Template("eyeCorners68", 68, (45, 42, 36, 39), five.points)
    errors = []
    for path in sorted((tmp_path / "out").glob("*/*.jpg")):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        found = measured_landmarks(detector, predictor, image, 48)[list(as68.indices)]
        errors.append(np.linalg.norm(found - target_points(as68, 96), axis=1).mean())
    assert np.mean(errors) < 3.0, errors


def test_align_face_on_grey_image_and_without_face(celeba_dir):
    detector, predictor = load_detector(), load_predictor(68)
    template = get_template("innerEyesAndBottomLip")
    grey = cv2.imread(str(image_files(identity_dirs(celeba_dir)[0])[0]), cv2.IMREAD_GRAYSCALE)
    face = align_face(grey, detector, predictor, template, 64, margin=4)
    assert face.shape == (64, 64, 3) and face.dtype == np.uint8
    assert align_face(np.zeros((120, 120, 3), np.uint8), detector, predictor, template, 64) is None


def test_missing_dlib_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(UserError, match=r'pip install "tripletloss\[align\]"'):
        require_dlib()


def test_killed_run_resumes_without_redoing_finished_files(celeba_dir, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    files = make_subset(celeba_dir, raw, identities=8, per_identity=5)
    cmd = [sys.executable, "-m", "tripletloss", "align", str(raw), str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(finished(out)) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished(out)}
    assert 5 <= len(before) < len(files), "the run must be killed midway"
    assert all(check_file(p) is None for p in before), "a killed run left a half-written image"
    summary = align_dataset(raw, out, AlignOptions(get_template("innerEyesAndBottomLip")), progress=False)
    assert summary.skipped == len(before)
    assert summary.aligned + summary.skipped + len(summary.failed) == len(files)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in before} == before
    after = finished(out)
    assert len(after) == len(files) - len(summary.failed) >= 0.97 * len(files)
    assert not list(out.glob("*/.*")), "temp files left behind"

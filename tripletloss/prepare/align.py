"""Face alignment with dlib: detect the largest face, locate landmarks, warp them onto a template.

`align_face` works on one image in memory; `align_dataset` walks RAW/<identity>/<images> into
OUT/<identity>/<name>.<ext> with worker processes, skipping outputs that already exist (so an interrupted run
resumes) and writing each output atomically (temp file + rename). Images without a usable face are listed in
OUT/align_report.tsv (source path, reason); OUT/alignment.json records the template, size and margin.
"""
import multiprocessing
import random
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from tripletloss.atomic import TMP_MARK, remove_stale_temps, write_atomic
from tripletloss.data.decode import BadImageError, read_image
from tripletloss.data.folders import identity_dirs, image_files
from tripletloss.errors import UserError
from tripletloss.prepare.detectors import load_detector
from tripletloss.prepare.landmarks import load_predictor, require_dlib
from tripletloss.prepare.record import write_record
from tripletloss.prepare.templates import target_points

REPORT_NAME = "align_report.tsv"

#: Report note of an image aligned from the centred fallback box (its output exists, unlike a failure's).
FALLBACK_NOTE = "fallback: no face detected, landmarks from a centred box of {} x the image"

#: `fallback` choices: "none", or "center" (align from a centred box when no face is detected).
FALLBACK_CHOICES = ("none", "center")

#: Default side of the fallback box: the median side of dlib's HOG face box on celeba_subset's 250 px photos
#: (0.436 of the image; 300 random images, box centre at 0.48-0.49 of the width and height).
DEFAULT_FALLBACK_SIZE = 0.44


def largest_face(detector, image_rgb, upsample):
    """Return the largest dlib.rectangle that `detector(image_rgb, upsample)` finds; None if no face."""
    faces = detector(image_rgb, upsample)
    return max(faces, key=lambda r: r.width() * r.height()) if len(faces) else None


def landmarks(predictor, image_rgb, rect):
    """Return the predictor's landmarks inside `rect` as a float32 (num_points, 2) array of (x, y)."""
    shape = predictor(image_rgb, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def find_landmarks(image_rgb, detector, predictor, upsample=1):
    """Return the landmarks (float32 (num_points, 2) of (x, y)) of the largest face in an RGB image, or None.

    `detector` is a tripletloss.prepare.detectors.FaceDetector (or any callable (image, upsample) -> rectangles).
    """
    rect = largest_face(detector, image_rgb, upsample)
    return None if rect is None else landmarks(predictor, image_rgb, rect)


def centre_box(shape, fraction):
    """Return the dlib.rectangle of side `fraction` x the shorter image side, centred in an image of `shape`."""
    height, width = shape[:2]
    side = max(1, round(fraction * min(height, width)))
    left, top = (width - side) // 2, (height - side) // 2
    return require_dlib().rectangle(left, top, left + side - 1, top + side - 1)


def face_box(image_rgb, detector, options):
    """Return (dlib.rectangle or None, note) for the face to align in `image_rgb` under AlignOptions `options`.

    note is "" for the largest detected face, FALLBACK_NOTE for options.fallback "center" when nothing was
    detected, or the reason there is no face to align (none found; several found with options.skip_multi).
    """
    faces = detector(image_rgb, options.upsample)
    if len(faces) > 1 and options.skip_multi:
        return None, f"{len(faces)} faces found (--skip-multi)"
    if len(faces):
        return max(faces, key=lambda r: r.width() * r.height()), ""
    if options.fallback == "center":
        return centre_box(image_rgb.shape, options.fallback_size), FALLBACK_NOTE.format(options.fallback_size)
    return None, f"no face found ({detector.tried(options.upsample)})"


def warp_to_template(image_rgb, points, template, size, margin=0):
    """Return `image_rgb` affinely warped so the template's landmarks of `points` land on their targets.

    A template with its own `warp` (dlib's face chip) does the whole job itself, at its fixed size.
    """
    if template.warp is not None:
        return template.warp(image_rgb, points)
    src = points[list(template.indices)].astype(np.float32)
    dst = target_points(template, size, margin)
    if len(src) == 3:
        matrix = cv2.getAffineTransform(src, dst)
    else:
        matrix, _ = cv2.estimateAffinePartial2D(src, dst)
    return cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_LINEAR)


def align_face(image_rgb, detector, predictor, template, size, margin=0, upsample=1):
    """Align the largest face of an RGB (or grey) uint8 image.

    Takes a FaceDetector (tripletloss.prepare.detectors) and a shape predictor matching `template.num_points`, a
    Template, the output `size` in pixels, an optional `margin` (pixels of extra context per side) and the
    detector `upsample` level. Returns the aligned size x size RGB uint8 image, or None when no face is found.
    """
    options = AlignOptions(template, size=size, margin=margin, upsample=upsample)
    return align_image(image_rgb, detector, predictor, options)[0]


def align_image(image_rgb, detector, predictor, options):
    """Align one RGB (or grey) uint8 image with a FaceDetector, a shape predictor and AlignOptions.

    Returns (face, note): the aligned RGB uint8 image and face_box's note ("" or FALLBACK_NOTE), or (None,
    the reason no face was aligned).
    """
    if image_rgb.ndim == 2:
        image_rgb = cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
    image_rgb = np.ascontiguousarray(image_rgb)
    rect, note = face_box(image_rgb, detector, options)
    if rect is None:
        return None, note
    points = landmarks(predictor, image_rgb, rect)
    return warp_to_template(image_rgb, points, options.template, options.size, options.margin), note


@dataclass
class AlignOptions:
    """Settings shared by every image of one `align_dataset` run."""
    template: object
    size: int = 96
    margin: int = 0
    upsample: int = 1
    ext: str = "png"
    detector: str = "hog"         # tripletloss.prepare.detectors.DETECTORS: hog, cnn, auto (HOG, then CNN)
    skip_multi: bool = False      # an image with more than one detected face is skipped (and reported)
    fallback: str = "none"        # "center": no face detected -> landmarks in a centred box (reported)
    fallback_size: float = DEFAULT_FALLBACK_SIZE  # that box's side, as a fraction of the shorter image side
    keep_aligned: bool = False  # inference: an image already size x size is taken as aligned, not re-aligned


@dataclass
class AlignSummary:
    """Outcome of one `align_dataset` run: counts, the failed images as (source path, reason) and the images
    aligned from the fallback box as (source path, FALLBACK_NOTE) (`aligned` counts those of this run too)."""
    total: int = 0
    skipped: int = 0
    aligned: int = 0
    failed: list = field(default_factory=list)
    fallbacks: list = field(default_factory=list)

    def count(self, src, status, note):
        """Add one _align_one result (status aligned, fallback, skipped or failed)."""
        if status == "failed":
            self.failed.append((src, note))
        elif status == "skipped":
            self.skipped += 1
        else:
            self.aligned += 1
        if status == "fallback":
            self.fallbacks.append((src, note))


def write_image(path, image_rgb):
    """Encode an RGB image by `path`'s extension and write it atomically (tripletloss.atomic)."""
    path = Path(path)
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_atomic(path, data.tobytes())


def work_list(raw, out, ext):
    """Return [(source image, output path)] for every image under `raw`, in sorted order.

    Raises UserError when two sources would write one output (`a.jpg` and `a.png` in one identity folder).
    """
    jobs = [(src, Path(out) / d.name / f"{src.stem}.{ext}") for d in identity_dirs(raw) for src in image_files(d)]
    seen = {}
    for src, dst in jobs:
        if dst in seen:
            raise UserError(f"{seen[dst]} and {src} would both be aligned to {dst}; rename one of them")
        seen[dst] = src
    return jobs


_WORKER = {}


def _init_worker(options):
    """Set this process's AlignOptions; load dlib's models only when the detector or the landmark count differs
    from the ones loaded (an in-process aligner called again, e.g. by repeated inference, reuses them)."""
    models = (options.detector, options.template.num_points)
    if _WORKER.get("models") != models:
        _WORKER.update(models=models, detector=load_detector(options.detector),
                       predictor=load_predictor(options.template.num_points))
    _WORKER["options"] = options


def face_of(src):
    """Worker: return (src, aligned RGB face or None, note) for one source image, with this process's models;
    note is the failure reason without a face, else "" or align_image's fallback note."""
    opts = _WORKER["options"]
    try:
        image = read_image(src)
    except BadImageError as exc:
        return src, None, f"cannot decode image: {exc.reason}"
    if opts.keep_aligned and image.shape[:2] == (opts.size, opts.size):
        return src, image, ""
    try:
        face, note = align_image(image, _WORKER["detector"], _WORKER["predictor"], opts)
    except (cv2.error, RuntimeError) as exc:
        return src, None, f"alignment error: {str(exc).strip().splitlines()[-1]}"
    return src, face, note


def _align_one(job):
    """Align one (src, dst) job in a worker; return (src, status, note): status aligned/fallback/skipped/failed,
    note the fallback note or the failure reason."""
    src, dst = job
    if dst.exists():
        return src, "skipped", ""
    _, face, note = face_of(src)
    if face is None:
        return src, "failed", note
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_image(dst, face)
    return src, "fallback" if note else "aligned", note


def run_workers(work, jobs, options, workers):
    """Yield `work(job)` (_align_one or face_of) for `jobs`, in-process for one worker, else from a process pool
    (in completion order)."""
    if workers <= 1:
        _init_worker(options)
        yield from map(work, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (options,)) as pool:
        yield from pool.imap_unordered(work, jobs, chunksize=4)


def align_dataset(raw, out, options, workers=1, random_order=False, progress=True):
    """Align every image of RAW/<identity>/ into OUT/<identity>/<stem>.<ext>; return an AlignSummary.

    Existing outputs are skipped (resumable; several processes may share OUT with random_order=True).
    OUT/align_report.tsv (source path<TAB>reason) lists this run's failures and every output aligned from the
    fallback box, those of earlier runs into OUT included.
    """
    require_dlib()
    out = Path(out)
    jobs = work_list(raw, out, options.ext)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out, f"*/.*{TMP_MARK}*")
    summary = AlignSummary(total=len(jobs))
    todo = [job for job in jobs if not job[1].exists()]
    done = {str(src) for src, dst in jobs if dst.exists()}
    summary.skipped = len(jobs) - len(todo)
    summary.fallbacks = [row for row in read_report(out / REPORT_NAME) if is_fallback(row) and row[0] in done]
    if random_order:
        random.shuffle(todo)
    for src, status, note in tqdm(run_workers(_align_one, todo, options, workers), total=len(todo),
                                  desc="align", unit="img", disable=not progress):
        summary.count(str(src), status, note)
    write_report(out / REPORT_NAME, summary.failed + summary.fallbacks)
    write_record(out, options)
    return summary


def is_fallback(row):
    """True for a report row (path, reason) of an image aligned from the fallback box."""
    return row[1].startswith(FALLBACK_NOTE.split(":")[0] + ":")


def read_report(path):
    """Return the (path, reason) rows of an align report; [] when there is none."""
    path = Path(path)
    if not path.is_file():
        return []
    return [tuple(line.split("\t", 1)) for line in path.read_text().splitlines()[1:] if "\t" in line]


def write_report(path, rows):
    """Write (source path, reason) rows, sorted, as a TSV with a header line, atomically."""
    lines = ["path\treason"] + [f"{src}\t{reason}" for src, reason in sorted(rows)]
    write_atomic(path, "\n".join(lines) + "\n")

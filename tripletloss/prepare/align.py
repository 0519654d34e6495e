"""Face alignment with dlib: detect the largest face, locate landmarks, warp them onto a template.

`align_face` works on one image in memory; `align_dataset` walks RAW/<identity>/<images> into
OUT/<identity>/<name>.<ext> with worker processes, skipping outputs that already exist (so an interrupted run
resumes) and writing each output atomically (temp file + rename). Images without a usable face are listed in
OUT/align_report.tsv (source path, reason); OUT/alignment.json records the template, size and margin.
"""
import multiprocessing
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from tripletloss.atomic import TMP_MARK, write_atomic, writer_pid
from tripletloss.data.decode import BadImageError, read_image
from tripletloss.data.folders import image_files
from tripletloss.errors import UserError
from tripletloss.prepare.dataset import identity_dirs
from tripletloss.prepare.landmarks import load_detector, load_predictor, require_dlib
from tripletloss.prepare.record import write_record
from tripletloss.prepare.templates import target_points

REPORT_NAME = "align_report.tsv"


def largest_face(detector, image_rgb, upsample):
    """Return the largest dlib.rectangle found at `upsample`, retrying once at upsample+1; None if no face."""
    for level in (upsample, upsample + 1):
        faces = detector(image_rgb, level)
        if len(faces):
            return max(faces, key=lambda r: r.width() * r.height())
    return None


def landmarks(predictor, image_rgb, rect):
    """Return the predictor's landmarks inside `rect` as a float32 (num_points, 2) array of (x, y)."""
    shape = predictor(image_rgb, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def find_landmarks(image_rgb, detector, predictor, upsample=1):
    """Return the landmarks (float32 (num_points, 2) of (x, y)) of the largest face in an RGB image, or None."""
    rect = largest_face(detector, image_rgb, upsample)
    return None if rect is None else landmarks(predictor, image_rgb, rect)


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

    Takes dlib's detector and a shape predictor matching `template.num_points`, a Template, the output `size`
    in pixels, an optional `margin` (pixels of extra context per side) and the detector `upsample` level.
    Returns the aligned size x size RGB uint8 image, or None when no face is found.
    """
    if image_rgb.ndim == 2:
        image_rgb = cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
    image_rgb = np.ascontiguousarray(image_rgb)
    points = find_landmarks(image_rgb, detector, predictor, upsample)
    return None if points is None else warp_to_template(image_rgb, points, template, size, margin)


@dataclass
class AlignOptions:
    """Settings shared by every image of one `align_dataset` run."""
    template: object
    size: int = 96
    margin: int = 0
    upsample: int = 1
    ext: str = "png"
    keep_aligned: bool = False  # inference: an image already size x size is taken as aligned, not re-aligned


@dataclass
class AlignSummary:
    """Outcome of one `align_dataset` run: counts and the failed images as (source path, reason)."""
    total: int = 0
    skipped: int = 0
    aligned: int = 0
    failed: list = field(default_factory=list)


def write_image(path, image_rgb):
    """Encode an RGB image by `path`'s extension and write it atomically (tripletloss.atomic)."""
    path = Path(path)
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_atomic(path, data.tobytes())


def remove_stale_temps(out):
    """Delete temp files under `out` left by killed runs (their writer process no longer exists)."""
    for tmp in Path(out).glob(f"*/.*{TMP_MARK}*"):
        pid = writer_pid(tmp)
        if pid is not None and not _pid_alive(pid):
            tmp.unlink(missing_ok=True)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    """Load dlib's models once per process."""
    _WORKER.update(options=options, detector=load_detector(),
                   predictor=load_predictor(options.template.num_points))


def face_of(src):
    """Worker: return (src, aligned RGB face or None, reason) for one source image, with this process's models."""
    opts = _WORKER["options"]
    try:
        image = read_image(src)
    except BadImageError:
        return src, None, "cannot decode image"
    if opts.keep_aligned and image.shape[:2] == (opts.size, opts.size):
        return src, image, ""
    try:
        face = align_face(image, _WORKER["detector"], _WORKER["predictor"], opts.template, opts.size, opts.margin,
                          opts.upsample)
    except (cv2.error, RuntimeError) as exc:
        return src, None, f"alignment error: {str(exc).strip().splitlines()[-1]}"
    if face is None:
        return src, None, f"no face found (upsample {opts.upsample} and {opts.upsample + 1})"
    return src, face, ""


def _align_one(job):
    """Align one (src, dst) job in a worker; return (src, status, reason) with status aligned/skipped/failed."""
    src, dst = job
    if dst.exists():
        return src, "skipped", ""
    _, face, reason = face_of(src)
    if face is None:
        return src, "failed", reason
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_image(dst, face)
    return src, "aligned", ""


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
    The failures of this run are written to OUT/align_report.tsv (source path<TAB>reason).
    """
    require_dlib()
    out = Path(out)
    jobs = work_list(raw, out, options.ext)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    summary = AlignSummary(total=len(jobs))
    todo = [job for job in jobs if not job[1].exists()]
    summary.skipped = len(jobs) - len(todo)
    if random_order:
        random.shuffle(todo)
    for src, status, reason in tqdm(run_workers(_align_one, todo, options, workers), total=len(todo),
                                    desc="align", unit="img", disable=not progress):
        if status == "failed":
            summary.failed.append((str(src), reason))
        elif status == "skipped":
            summary.skipped += 1
        else:
            summary.aligned += 1
    write_report(out / REPORT_NAME, summary.failed)
    write_record(out, options)
    return summary


def write_report(path, failed):
    """Write (source path, reason) rows, sorted, as a TSV with a header line, atomically."""
    lines = ["path\treason"] + [f"{src}\t{reason}" for src, reason in sorted(failed)]
    write_atomic(path, "\n".join(lines) + "\n")
"""`tripletloss align RAW OUT`: dlib landmark alignment of a one-folder-per-identity dataset."""
import time

from tripletloss.errors import UserError
from tripletloss.prepare.align import (
    DEFAULT_FALLBACK_SIZE,
    FALLBACK_CHOICES,
    REPORT_NAME,
    AlignOptions,
    align_dataset,
)
from tripletloss.prepare.detectors import DETECTORS
from tripletloss.prepare.templates import TEMPLATES, get_template


def register(subparsers):
    """Add the `align` subcommand to `subparsers`."""
    p = subparsers.add_parser("align", help="detect, landmark and warp faces to a fixed template (dlib)",
                              description="Align RAW/<identity>/<image> faces into OUT/<identity>/<name>.<ext>. "
                                          "Existing outputs are skipped, so a stopped run can be restarted.")
    p.add_argument("raw", help="input dataset folder, one sub-folder per identity")
    p.add_argument("out", help="output folder (created); failures are listed in OUT/" + REPORT_NAME)
    p.add_argument("--size", type=int, default=None,
                   help="output side in pixels (default: the template's, 96; dlib_chip_150 is always 150)")
    p.add_argument("--landmarks", default="innerEyesAndBottomLip", choices=sorted(TEMPLATES),
                   help="template: which landmarks are pinned where (default innerEyesAndBottomLip)")
    p.add_argument("--margin", type=int, default=0, help="extra pixels of context on each side (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--random-order", action="store_true",
                   help="shuffle the work list, so several processes can share one OUT")
    p.add_argument("--upsample", type=int, default=1,
                   help="dlib detector upsampling; HOG retries once at N+1 when it finds no face (default 1)")
    p.add_argument("--ext", default="png", choices=["png", "jpg"], help="output format (default png)")
    add_face_arguments(p)
    p.set_defaults(func=run)


def add_face_arguments(parser):
    """Add the face-finding options (--detector, --skip-multi, --fallback, --fallback-size) to `parser`."""
    parser.add_argument("--detector", default="hog", choices=sorted(DETECTORS),
                        help="dlib's HOG detector (default), its CNN detector (slow on a CPU), or auto: HOG, then "
                             "the CNN on images where HOG finds no face")
    parser.add_argument("--skip-multi", action="store_true",
                        help="skip images with more than one detected face (listed in the report)")
    parser.add_argument("--fallback", default="none", choices=FALLBACK_CHOICES,
                        help="center: when no face is detected, align from a centred box (for datasets of centred "
                             "faces; such outputs are listed in the report)")
    parser.add_argument("--fallback-size", type=float, default=DEFAULT_FALLBACK_SIZE, metavar="F",
                        help=f"side of the centred box as a fraction of the shorter image side "
                             f"(default {DEFAULT_FALLBACK_SIZE})")


def face_options(args):
    """Return the AlignOptions keywords of add_face_arguments' options; UserError for a bad --fallback-size."""
    if not 0 < args.fallback_size <= 1:
        raise UserError(f"--fallback-size {args.fallback_size}: must be in (0, 1], a fraction of the image side")
    return dict(detector=args.detector, skip_multi=args.skip_multi, fallback=args.fallback,
                fallback_size=args.fallback_size)


def run(args):
    """Run the alignment; print a summary; return 0 (failures are listed in the report, not fatal)."""
    template = get_template(args.landmarks)
    size = args.size or template.default_size
    if template.warp is not None and size != template.default_size:
        raise UserError(f"--size {size}: template {template.name} always produces {template.default_size} px")
    options = AlignOptions(template=template, size=size, margin=args.margin,
                           upsample=args.upsample, ext=args.ext, **face_options(args))
    start = time.time()
    s = align_dataset(args.raw, args.out, options, workers=args.workers, random_order=args.random_order)
    done = s.total - len(s.failed)
    print(f"{s.total} images: {s.aligned} aligned now, {s.skipped} already done, {len(s.failed)} failed "
          f"(no face, several faces with --skip-multi, or unreadable), {len(s.fallbacks)} of the outputs from the "
          f"fallback box ({100.0 * done / max(s.total, 1):.2f}% aligned) in {time.time() - start:.1f} s; "
          f"report: {args.out}/{REPORT_NAME}")
    return 0

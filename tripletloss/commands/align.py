"""`tripletloss align RAW OUT`: dlib landmark alignment of a one-folder-per-identity dataset."""
import time

from tripletloss.commands.argtypes import int_in, nonneg_int, positive_int
from tripletloss.commands.face_args import add_face_arguments, face_options
from tripletloss.errors import UserError
from tripletloss.outputs import refuse_inside
from tripletloss.prepare.align import REPORT_NAME, AlignOptions, align_dataset
from tripletloss.prepare.templates import TEMPLATES, get_template

MIN_SIZE, MAX_SIZE = 16, 2048  # output side in pixels: a face chip, not a poster


def register(subparsers):
    """Add the `align` subcommand to `subparsers`."""
    p = subparsers.add_parser("align", help="detect, landmark and warp faces to a fixed template (dlib)",
                              description="Align RAW/<identity>/<image> faces into OUT/<identity>/<name>.<ext>. "
                                          "Existing outputs are skipped, so a stopped run can be restarted.")
    p.add_argument("raw", help="input dataset folder, one sub-folder per identity")
    p.add_argument("out", help="output folder (created); failures are listed in OUT/" + REPORT_NAME)
    p.add_argument("--size", type=int_in(MIN_SIZE, MAX_SIZE), default=None,
                   help=f"output side in pixels, {MIN_SIZE}..{MAX_SIZE} (default: the template's, 96; dlib_chip_150 is "
                        "always 150)")
    p.add_argument("--landmarks", default="innerEyesAndBottomLip", choices=sorted(TEMPLATES),
                   help="template: which landmarks are pinned where (default innerEyesAndBottomLip)")
    p.add_argument("--margin", type=nonneg_int, default=0, help="extra pixels of context on each side (default 0)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default 1)")
    p.add_argument("--random-order", action="store_true",
                   help="shuffle the work list, so several processes can share one OUT")
    p.add_argument("--upsample", type=int_in(0, 4), default=1,
                   help="dlib detector upsampling; HOG retries once at N+1 when it finds no face (default 1)")
    p.add_argument("--ext", default="png", choices=["png", "jpg"], help="output format (default png)")
    add_face_arguments(p)
    p.set_defaults(func=run)


def run(args):
    """Run the alignment; print a summary; return 0 (failures are listed in the report, not fatal)."""
    refuse_inside(args.out, args.raw, "OUT")
    template = get_template(args.landmarks)
    size = template.default_size if args.size is None else args.size
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

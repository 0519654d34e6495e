"""Command-line options for finding faces (detector, several faces, fallback box), shared by `align` and the
commands that align raw photos before embedding them."""
from tripletloss.errors import UserError
from tripletloss.prepare.align import DEFAULT_FALLBACK_SIZE, FALLBACK_CHOICES
from tripletloss.prepare.detectors import DETECTORS


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

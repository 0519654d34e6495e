"""Command-line options shared by the commands that embed images with a trained checkpoint."""
import sys

from tripletloss.errors import UserError


def add_model_arguments(parser, data_dir=True):
    """Add --model (required), --device and, if `data_dir`, --data-dir (required) to `parser`."""
    parser.add_argument("--model", required=True, metavar="CKPT", help="checkpoint written by train.py")
    if data_dir:
        parser.add_argument("--data-dir", required=True, metavar="DIR",
                            help="dataset folder DIR/<identity>/<images> (several joined with ':')")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def add_jitter_argument(parser):
    """Add --jitter N (dlib's num_jitters: the mean embedding of N jittered copies of each image) to `parser`."""
    parser.add_argument("--jitter", type=int, default=0, metavar="N",
                        help="embed each image as the mean over N jittered copies (small random shift, scale, "
                             "rotation, mirror; dlib's num_jitters), N times slower (default 0: off)")


def embedder_from_args(args):
    """Load the Embedder named by --model / --device / --jitter (torch is imported only when a command runs); print
    to stderr the alignment its faces need when the checkpoint names one (imported networks do)."""
    from tripletloss.inference import load_embedder
    if getattr(args, "jitter", 0) < 0:
        raise UserError(f"--jitter {args.jitter}: must be >= 0 (the number of jittered copies; 0 = off)")
    embedder = load_embedder(args.model, device=args.device, jitter=getattr(args, "jitter", 0))
    template = embedder.preprocess.get("template")
    if template:
        print(f"note: {args.model} expects faces aligned by `python -m tripletloss align --landmarks {template}`",
              file=sys.stderr)
    return embedder

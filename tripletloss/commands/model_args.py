"""Command-line options shared by the commands that embed images with a trained checkpoint, and the choice of
how their photos are aligned (the checkpoint's alignment record, --landmarks, --aligned)."""
import sys

from tripletloss.commands.face_args import add_face_arguments, face_options
from tripletloss.data.folders import scan_folders
from tripletloss.errors import UserError
from tripletloss.outputs import file_target, refuse_inside
from tripletloss.prepare.templates import TEMPLATES


def add_model_arguments(parser, data_dir=True):
    """Add --model (required), --device, the alignment options and, if `data_dir`, --data-dir (required)."""
    parser.add_argument("--model", required=True, metavar="CKPT", help="checkpoint written by train.py")
    if data_dir:
        parser.add_argument("--data-dir", required=True, metavar="DIR",
                            help="dataset folder DIR/<identity>/<images> (several joined with ':')")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    add_alignment_arguments(parser)


def add_alignment_arguments(parser):
    """Add --aligned, --landmarks, --align-workers and align's face-finding options (--detector, --skip-multi,
    --fallback, --fallback-size) to `parser`."""
    parser.add_argument("--aligned", action="store_true",
                        help="the images are already aligned: use them as given (no face detection)")
    parser.add_argument("--landmarks", choices=sorted(TEMPLATES), default=None,
                        help="alignment template for a checkpoint that records none (at the template's size)")
    parser.add_argument("--align-workers", type=int, default=1, metavar="N",
                        help="processes aligning raw photos (default 1)")
    add_face_arguments(parser)


def wanted_alignment(args, preprocess):
    """Return the alignment {template, size, margin} of --landmarks (at the template's size) or else of the
    checkpoint's preprocess dict; None when neither names one."""
    from tripletloss.prepare.record import alignment_of
    if args.landmarks:
        return {"template": args.landmarks, "size": TEMPLATES[args.landmarks].default_size, "margin": 0}
    return alignment_of(preprocess)


def chosen_alignment(args, preprocess):
    """Return the alignment record {template, size, margin} the photos need, or None to use them as given.

    None with --aligned, when --data-dir already holds faces aligned that way (its alignment.json), or when
    neither the checkpoint nor --landmarks names a template (then with a one-line warning).
    """
    from tripletloss.prepare.record import describe, read_record, same_alignment
    wanted = wanted_alignment(args, preprocess)
    if args.aligned:
        return None
    if wanted is None:
        print(f"warning: {args.model} records no alignment template: images are used as given (pass --landmarks "
              f"NAME to align raw photos, --aligned if they are aligned)", file=sys.stderr)
        return None
    folder = getattr(args, "data_dir", None) or getattr(args, "unlabelled", None)
    have = read_record(folder)
    if have is not None and not same_alignment(have, wanted):
        print(f"warning: {folder} was aligned with {describe(have)} but {args.model} expects "
              f"{describe(wanted)}: images are used as given", file=sys.stderr)
    return None if have is not None else wanted


def add_jitter_argument(parser):
    """Add --jitter N (dlib's num_jitters: the mean embedding of N jittered copies of each image) to `parser`."""
    parser.add_argument("--jitter", type=int, default=0, metavar="N",
                        help="embed each image as the mean over N jittered copies (small random shift, scale, "
                             "rotation, mirror; dlib's num_jitters), N times slower (default 0: off)")


def embedder_from_args(args):
    """Load the Embedder named by --model / --device / --jitter (torch is imported only when a command runs),
    aligning raw photos like the model's training faces unless chosen_alignment says otherwise."""
    from tripletloss.face_input import FaceAligner, align_options
    from tripletloss.inference import load_embedder
    if getattr(args, "jitter", 0) < 0:
        raise UserError(f"--jitter {args.jitter}: must be >= 0 (the number of jittered copies; 0 = off)")
    embedder = load_embedder(args.model, device=args.device, jitter=getattr(args, "jitter", 0))
    alignment = chosen_alignment(args, embedder.preprocess)
    if alignment is not None:
        embedder.aligner = FaceAligner(align_options(alignment, **face_options(args)), workers=args.align_workers)
    return embedder


def keep_found(found, *columns):
    """Return each of `columns` (sequences over the same images) reduced to the images where `found` is True."""
    return tuple([item for item, ok in zip(column, found) if ok] for column in columns)


def embed_labelled_faces(args, flip=False):
    """Check that --out is a file that can be written outside --data-dir, then embed every image under --data-dir
    (one sub-folder per identity) with the model of `args`, mirror-averaged with `flip`.

    Returns (embeddings (N, D), paths, identity names) of the N images with a usable face; the others are named
    on stderr and left out.
    """
    file_target(args.out, "--out")
    refuse_inside(args.out, args.data_dir, "--out")
    paths, labels, names = scan_folders(args.data_dir)
    emb, found = embedder_from_args(args).embed_faces(paths, flip=flip, progress=True)
    paths, identities = keep_found(found, paths, [names[i] for i in labels])
    return emb, paths, identities

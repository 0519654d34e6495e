"""`compare A B [C ...]`: are these photos the same person? Distances and a verdict at the model's threshold."""
import sys
from pathlib import Path

import numpy as np

from tripletloss.commands.model_args import add_model_arguments, embedder_from_args, keep_found
from tripletloss.errors import UserError
from tripletloss.evaluation.calibration import same_probability, threshold_for
from tripletloss.evaluation.compare import distance_matrix, format_matrix, verdict_lines


def register(subparsers):
    """Add the `compare` subcommand."""
    p = subparsers.add_parser("compare", help="distance matrix of photos and same/different verdicts",
                              description=__doc__)
    add_model_arguments(p, data_dir=False)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="two or more photos (raw photos are aligned)")
    p.add_argument("--threshold", type=float, help="distance below which a pair is the same person "
                                                    "(default: the model's calibrated threshold)")
    p.set_defaults(func=run)


def run(args):
    """Embed the photos, print the distance matrix and one verdict line per pair; 1 if a photo has no face."""
    missing = [image for image in args.images if not Path(image).is_file()]
    if missing or len(args.images) < 2:
        raise UserError(f"image not found: {missing[0]}" if missing else "compare needs at least two images")
    embedder = embedder_from_args(args)
    calibration = embedder.calibration or {}
    threshold = threshold_for(calibration, args.threshold, args.model)
    emb, found = embedder.embed_faces(args.images, flip=calibration.get("flip", False), progress=False)
    (names,) = keep_found(found, args.images)
    dist = distance_matrix(np.asarray(emb), calibration.get("metric", "euclidean"))
    probability = (lambda d: same_probability(calibration, d)) if calibration else None
    print(f"{calibration.get('metric', 'euclidean')} distances; same person below {threshold:.4f}")
    print("\n".join(format_matrix(names, dist) + verdict_lines(names, dist, threshold, probability)))
    if not found.all():
        print(f"{int((~found).sum())} image(s) without a face were left out", file=sys.stderr)
    return 0 if found.all() else 1

"""`embed`: write the embeddings of a dataset (FILE.npy) with FILE.labels.csv beside it, optionally FILE.reps.csv."""
import numpy as np

from tripletloss.commands.model_args import add_jitter_argument, add_model_arguments, embed_labelled_faces
from tripletloss.evaluation.export import FORMATS, write_embeddings


def register(subparsers):
    """Add the `embed` subcommand."""
    p = subparsers.add_parser("embed", help="export embeddings and labels of a dataset", description=__doc__)
    add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="FILE",
                   help="embeddings .npy (FILE's name with .labels.csv goes beside it)")
    p.add_argument("--format", choices=FORMATS, default="npy",
                   help="csv: also write FILE.reps.csv; openface: reps.csv and labels.csv as OpenFace's "
                        "label,path rows")
    p.add_argument("--flip", action="store_true", help="average each image's embedding with its mirror's")
    add_jitter_argument(p)
    p.set_defaults(func=run)


def run(args):
    """Embed every image under --data-dir (leaving out, with a warning, those that cannot be decoded) and write
    the files."""
    emb, paths, identities = embed_labelled_faces(args, flip=args.flip)
    for path in write_embeddings(np.asarray(emb), paths, identities, args.out, args.format):
        print(f"wrote {path}")
    return 0

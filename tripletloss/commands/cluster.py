"""`cluster`: cluster a dataset's embeddings; write one thumbnail grid per cluster, a t-SNE plot, purity / NMI.
With `--unlabelled DIR`, group the photos of a flat folder at the model's threshold (no k) into clusters.csv."""
from tripletloss.commands.argtypes import nonneg_int, positive_int
from tripletloss.commands.model_args import add_model_arguments, embedder_from_args
from tripletloss.errors import UserError
from tripletloss.evaluation.calibration import threshold_for
from tripletloss.evaluation.clusters import METHODS, THRESHOLD_METHODS, cluster_folder, cluster_unlabelled
from tripletloss.outputs import folder_target, refuse_inside


def register(subparsers):
    """Add the `cluster` subcommand."""
    p = subparsers.add_parser("cluster", help="cluster embeddings, write cluster grids and a t-SNE plot",
                              description=__doc__)
    add_model_arguments(p, data_dir=False)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", metavar="DIR", help="labelled dataset DIR/<identity>/<images>")
    source.add_argument("--unlabelled", metavar="DIR", help="a flat folder of photos without names")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for cluster_NNN.png and tsne.png")
    p.add_argument("--k", type=positive_int, help="number of clusters (default: number of identities)")
    p.add_argument("--method", choices=METHODS + THRESHOLD_METHODS, default=None,
                   help="kmeans (default) or agglomerative with --data-dir; chinese-whispers (default) or dbscan "
                        "with --unlabelled")
    p.add_argument("--threshold", type=float, help="--unlabelled: link faces closer than this (default: the "
                                                    "model's calibrated threshold)")
    p.add_argument("--max-identities", type=nonneg_int, default=20, metavar="N",
                   help="use the first N identities by name (default 20; 0: all)")
    p.add_argument("--max-images-per-identity", type=nonneg_int, default=10, metavar="M",
                   help="use the first M images of each (default 10; 0: all)")
    p.set_defaults(func=run)


def method_of(args):
    """Return --method, defaulting to the first method for the input kind; UserError for the other kind's."""
    allowed = THRESHOLD_METHODS if args.unlabelled else METHODS
    if args.method and args.method not in allowed:
        raise UserError(f"--method {args.method} clusters {'--data-dir' if args.unlabelled else '--unlabelled'} "
                        f"folders; here choose from {', '.join(allowed)}")
    return args.method or allowed[0]


def run(args):
    """Cluster and print the scores against the true identities (or, unlabelled, the cluster count)."""
    method = method_of(args)
    folder_target(args.out, "--out")
    refuse_inside(args.out, args.data_dir or args.unlabelled, "--out")
    embedder = embedder_from_args(args)
    if args.unlabelled:
        threshold = threshold_for(embedder.calibration, args.threshold, args.model)
        found = cluster_unlabelled(embedder, args.unlabelled, args.out, threshold, method, progress=True)
        print(f"{found['images']} images ({found['faces']} with a face) in {found['clusters']} clusters ({method}, "
              f"threshold {threshold:.4f}); {args.out}/clusters.csv and cluster_NNN.png")
        return 0
    scores = cluster_folder(embedder, args.data_dir, args.out, args.k, method, args.max_identities or None,
                            args.max_images_per_identity or None, progress=True)
    print(f"{scores['images']} images of {scores['identities']} identities in {scores['clusters']} clusters "
          f"({method}): purity {scores['purity']:.4f}, NMI {scores['nmi']:.4f}; pictures in {args.out}")
    return 0

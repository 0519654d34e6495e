"""`cluster`: cluster a dataset's embeddings; write one thumbnail grid per cluster, a t-SNE plot, purity / NMI."""
from tripletloss.evaluation.clusters import METHODS, cluster_folder
from tripletloss.commands.argtypes import positive_int
from tripletloss.evaluation.model_options import add_model_arguments, embedder_from_args
from tripletloss.outputs import folder_target, refuse_inside


def register(subparsers):
    """Add the `cluster` subcommand."""
    p = subparsers.add_parser("cluster", help="cluster embeddings, write cluster grids and a t-SNE plot",
                              description=__doc__)
    add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for cluster_NNN.png and tsne.png")
    p.add_argument("--k", type=positive_int, help="number of clusters (default: number of identities)")
    p.add_argument("--method", choices=METHODS, default="kmeans", help="clustering algorithm (default kmeans)")
    p.add_argument("--max-identities", type=positive_int, metavar="N", help="use the first N identities (by name)")
    p.add_argument("--max-images-per-identity", type=positive_int, metavar="M", help="use the first M images of each")
    p.set_defaults(func=run)


def run(args):
    """Cluster and print the scores against the true identities."""
    folder_target(args.out, "--out")
    refuse_inside(args.out, args.data_dir, "--out")
    scores = cluster_folder(embedder_from_args(args), args.data_dir, args.out, args.k, args.method,
                            args.max_identities, args.max_images_per_identity, progress=True)
    print(f"{scores['images']} images of {scores['identities']} identities in {scores['clusters']} clusters "
          f"({args.method}): purity {scores['purity']:.4f}, NMI {scores['nmi']:.4f}; pictures in {args.out}")
    return 0

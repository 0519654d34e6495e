"""`cluster`: cluster a dataset's embeddings; write one thumbnail grid per cluster, a t-SNE plot, purity / NMI."""
from tripletloss.evaluation.clusters import METHODS, cluster_folder
from tripletloss.evaluation.model_options import add_model_arguments, embedder_from_args


def register(subparsers):
    """Add the `cluster` subcommand."""
    p = subparsers.add_parser("cluster", help="cluster embeddings, write cluster grids and a t-SNE plot",
                              description=__doc__)
    add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for cluster_NNN.png and tsne.png")
    p.add_argument("--k", type=int, help="number of clusters (default: number of identities)")
    p.add_argument("--method", choices=METHODS, default="kmeans", help="clustering algorithm (default kmeans)")
    p.add_argument("--max-identities", type=int, metavar="N", help="use the first N identities (by name)")
    p.add_argument("--max-images-per-identity", type=int, metavar="M", help="use the first M images of each")
    p.set_defaults(func=run)


def run(args):
    """Cluster and print the scores against the true identities."""
    scores = cluster_folder(embedder_from_args(args), args.data_dir, args.out, args.k, args.method,
                            args.max_identities, args.max_images_per_identity, progress=True)
    print(f"{scores['images']} images of {scores['identities']} identities in {scores['clusters']} clusters "
          f"({args.method}): purity {scores['purity']:.4f}, NMI {scores['nmi']:.4f}; pictures in {args.out}")
    return 0

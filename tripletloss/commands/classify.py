"""`classify`: train an identity classifier on embeddings (linear SVM or k-NN, saved as .npz), predict with it."""
from pathlib import Path

from tripletloss.data.folders import scan_folders
from tripletloss.commands.argtypes import positive_int
from tripletloss.errors import UserError
from tripletloss.evaluation.classifier import (
    METHODS,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from tripletloss.evaluation.model_options import add_model_arguments, embedder_from_args
from tripletloss.outputs import file_target, refuse_inside


def register(subparsers):
    """Add the `classify` subcommand with its `train` and `predict` actions."""
    p = subparsers.add_parser("classify", help="identity classifier on embeddings: train / predict",
                              description=__doc__)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = actions.add_parser("train", help="fit a classifier on every image of a dataset")
    add_model_arguments(train)
    train.add_argument("--out", required=True, metavar="FILE.npz", help="where to store the classifier")
    train.add_argument("--method", choices=METHODS, default="svm", help="linear SVM (default) or k-NN")
    train.add_argument("--k", type=positive_int, default=5, help="neighbours for --method knn (default 5)")
    train.set_defaults(func=run_train)
    pred = actions.add_parser("predict", help="name the person in each image")
    add_model_arguments(pred, data_dir=False)
    pred.add_argument("--classifier", required=True, metavar="FILE.npz", help="written by `classify train`")
    pred.add_argument("images", nargs="+", metavar="IMAGE")
    pred.set_defaults(func=run_predict)


def run_train(args):
    """Embed the dataset (leaving out, with a warning, images that cannot be decoded), fit the classifier and
    save it."""
    file_target(args.out, "--out")
    refuse_inside(args.out, args.data_dir, "--out")
    paths, labels, names = scan_folders(args.data_dir)
    bad = []
    emb = embedder_from_args(args).embed_paths(paths, progress=True, bad=bad)
    clf = train_classifier(emb, [names[label] for i, label in enumerate(labels) if i not in set(bad)], args.method,
                           args.k)
    path = save_classifier(clf, args.out)
    print(f"trained {args.method} on {len(paths)} images of {len(names)} identities; wrote {path}")
    return 0


def run_predict(args):
    """Print `IMAGE<TAB>name<TAB>confidence` for each image (a warning instead for one that cannot be decoded)."""
    missing = [image for image in args.images if not Path(image).is_file()]
    if missing:
        raise UserError(f"image not found: {missing[0]}")
    clf = load_classifier(args.classifier)
    bad = []
    emb = embedder_from_args(args).embed_paths(args.images, progress=False, bad=bad)
    images = [image for i, image in enumerate(args.images) if i not in set(bad)]
    for image, (name, conf) in zip(images, zip(*predict(clf, emb))):
        print(f"{image}\t{name}\t{conf:.3f}")
    return 0

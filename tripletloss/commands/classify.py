"""`classify`: train an identity classifier on embeddings (linear SVM or k-NN, saved as .npz), predict with it."""
from pathlib import Path

from tripletloss.commands.argtypes import positive_int
from tripletloss.commands.model_args import add_model_arguments, embed_labelled_faces, embedder_from_args
from tripletloss.errors import UserError
from tripletloss.evaluation.calibration import same_probability, threshold_for
from tripletloss.evaluation.classifier import (
    METHODS,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)


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
    pred = actions.add_parser("predict", help="name the person in each image, or `unknown`")
    add_model_arguments(pred, data_dir=False)
    pred.add_argument("--classifier", required=True, metavar="FILE.npz", help="written by `classify train`")
    pred.add_argument("--threshold", type=float, help="unknown beyond this distance to the nearest known face "
                                                       "(default: the model's calibrated threshold)")
    pred.add_argument("images", nargs="+", metavar="IMAGE")
    pred.set_defaults(func=run_predict)


def run_train(args):
    """Embed the dataset (leaving out, with a warning, images that cannot be decoded), fit the classifier and
    save it."""
    emb, paths, identities = embed_labelled_faces(args)
    clf = train_classifier(emb, identities, args.method, args.k)
    path = save_classifier(clf, args.out)
    print(f"trained {args.method} on {len(paths)} images of {len(set(identities))} identities; wrote {path}")
    return 0


def run_predict(args):
    """Print `IMAGE<TAB>name or unknown<TAB>distance<TAB>confidence` per image (`no face` when none is found
    or it cannot be decoded);
    return 1 if some image has no face."""
    missing = [image for image in args.images if not Path(image).is_file()]
    if missing:
        raise UserError(f"image not found: {missing[0]}")
    clf = load_classifier(args.classifier)
    embedder = embedder_from_args(args)
    threshold = threshold_for(embedder.calibration, args.threshold, args.model)
    emb, found = embedder.embed_faces(args.images, progress=False)
    answers = iter(zip(*predict(clf, emb))) if found.any() else iter(())
    for image, ok in zip(args.images, found):
        print(f"{image}\t" + (answer_line(next(answers), threshold, embedder.calibration) if ok else "no face"))
    return 0 if found.all() else 1


def answer_line(answer, threshold, calibration):
    """Return `name<TAB>distance<TAB>confidence` for one (name, score, distance) answer of predict: `unknown`
    when the distance is not below `threshold`; confidence is the calibration's P(same person | distance)
    (the classifier's own score without a calibration)."""
    name, score, distance = answer
    confidence = float(same_probability(calibration, distance)) if calibration else score
    return f"{name if distance < threshold else 'unknown'}\t{distance:.4f}\t{confidence:.3f}"

"""`evaluate`: LFW-protocol verification of a checkpoint on an LFW-format pairs file."""
import json
import sys

from tripletloss.commands.model_args import (
    add_jitter_argument,
    add_model_arguments,
    embedder_from_args,
    wanted_alignment,
)
from tripletloss.errors import UserError
from tripletloss.evaluation.calibration import calibration_from, save_calibrated
from tripletloss.evaluation.plots import save_roc
from tripletloss.evaluation.protocol import METRICS
from tripletloss.evaluation.verification import JSON_KEYS, verify
from tripletloss.outputs import file_target
from tripletloss.prepare.record import alignment_of

ROWS = (("accuracy", "accuracy_std", "accuracy"), ("val", "val_std", "VAL @ FAR=1e-3"), ("far", None, "FAR"),
        ("auc", None, "ROC AUC"), ("eer", None, "EER"), ("threshold", None, "threshold (mean)"))


def register(subparsers):
    """Add the `evaluate` subcommand."""
    p = subparsers.add_parser("evaluate", help="verification accuracy, VAL@FAR, AUC, EER on a pairs file",
                              description=__doc__)
    add_model_arguments(p)
    p.add_argument("--pairs", required=True, metavar="FILE", help="LFW-format pairs.txt (folds from its layout)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--flip", action="store_true", help="average each image's embedding with its mirror's")
    add_jitter_argument(p)
    p.add_argument("--subtract-mean", action="store_true",
                   help="subtract the training folds' mean embedding (facenet's subtract_mean)")
    p.add_argument("--metric", choices=METRICS, default="euclidean",
                   help="squared euclidean (default) or cosine distance of L2-normalised embeddings")
    p.add_argument("--plot", metavar="ROC.png", help="also write the ROC curve to this PNG")
    missing = p.add_mutually_exclusive_group()
    missing.add_argument("--skip-missing", action="store_const", const="skip", dest="missing",
                         help="leave out pairs whose image is missing (e.g. no face found by align) and count them")
    missing.add_argument("--missing-as-wrong", action="store_const", const="wrong", dest="missing",
                         help="count pairs whose image is missing as wrongly classified in the accuracy (the "
                              "other metrics are over the remaining pairs)")
    p.add_argument("--calibrate", action="store_true",
                   help="store the thresholds (and the alignment used) in the checkpoint: in place, keeping "
                        "MODEL.orig, or in --out")
    p.add_argument("--far", type=float, default=1e-3, help="false-accept rate of the stored far_threshold")
    p.add_argument("--out", metavar="CKPT", help="with --calibrate: write the calibrated checkpoint here instead")
    p.set_defaults(func=run, missing="error")


def format_table(metrics):
    """Return the metrics dict as an aligned text table (value ± std where there is one)."""
    what = "counted wrong in accuracy" if metrics["missing"] == "wrong" else "skipped"
    lines = [f"{metrics['pairs']} pairs in {metrics['folds']} folds ({metrics['skipped_pairs']} {what}: "
             f"missing images; {metrics['faceless_pairs']}: no face found)"]
    for key, std, label in ROWS:
        value = f"{metrics[key]:.4f}" + (f" ± {metrics[std]:.4f}" if std else "")
        lines.append(f"  {label:<18} {value}")
    return "\n".join(lines)


def run(args):
    """Evaluate --model on --pairs; print a table or JSON; optionally write the ROC plot and calibrate."""
    if args.calibrate and args.subtract_mean:
        raise UserError("--calibrate: thresholds found with --subtract-mean do not apply to single pairs; drop it")
    if args.plot:
        file_target(args.plot, "--plot")
    embedder = embedder_from_args(args)
    metrics, heldout, issame = verify(embedder, args.data_dir, args.pairs, args.flip, args.subtract_mean,
                                      args.metric, progress=True, missing=args.missing)
    if args.plot:
        save_roc(heldout, issame, args.plot, title=f"ROC, AUC {metrics['auc']:.4f}",
                 operating_point=(metrics["far"], metrics["val"]))
    print(json.dumps({k: metrics[k] for k in JSON_KEYS}) if args.json else format_table(metrics))
    if args.calibrate:
        calibrate(args, embedder, metrics, heldout, issame)
    return 0


def calibrate(args, embedder, metrics, heldout, issame):
    """Store the calibration of this run (and the alignment it used, if the checkpoint had none) in the model."""
    calibration = calibration_from(metrics, heldout, issame, args.far, args.metric, args.flip, args.pairs)
    alignment = None if alignment_of(embedder.preprocess) else wanted_alignment(args, embedder.preprocess)
    path, backup = save_calibrated(args.model, calibration, alignment, args.out)
    kept = f" (original kept as {backup})" if backup else ""
    print(f"calibrated: threshold {calibration['threshold']:.4f}, {calibration['far_threshold']:.4f} at FAR "
          f"{args.far:g}{', alignment ' + alignment['template'] if alignment else ''}; wrote {path}{kept}",
          file=sys.stderr)

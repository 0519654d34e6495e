"""A model's calibrated verification threshold, stored in its checkpoint under "calibration".

`evaluate --calibrate` (and every validation during training) records: `threshold`, the mean of the 10-fold
protocol's best-accuracy thresholds; `far_threshold`, the distance below which `far_target` of the different-person
pairs fall; and a logistic fit of P(same person | distance) on the pairs, which `compare` and `classify predict`
report as their confidence. A pair is "same" when its distance is below the threshold.
"""
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from tripletloss.atomic import write_atomic
from tripletloss.engine.checkpoint import load_checkpoint, save_atomic
from tripletloss.errors import UserError
from tripletloss.evaluation.protocol import far_threshold


def calibration_from(metrics, heldout, issame, far_target=1e-3, metric="euclidean", flip=False, source=""):
    """Return the calibration dict of a verification run: metrics from evaluate_folds, the (N,) held-out pair
    distances `heldout` and their bool labels `issame`, the FAR target, distance metric, flip and pairs file."""
    fit = LogisticRegression(C=1e6).fit(np.asarray(heldout).reshape(-1, 1), np.asarray(issame, dtype=bool))
    return {"threshold": float(metrics["threshold"]), "far_threshold": far_threshold(heldout, issame, far_target),
            "far_target": float(far_target), "metric": metric, "flip": bool(flip),
            "accuracy": float(metrics["accuracy"]), "pairs": int(len(issame)), "source": str(source),
            "logistic": [float(fit.coef_[0, 0]), float(fit.intercept_[0])]}


def same_probability(calibration, distances):
    """Return P(same person) for `distances` (array) from the calibration's logistic fit, as a float array."""
    slope, intercept = calibration["logistic"]
    return 1.0 / (1.0 + np.exp(-(slope * np.asarray(distances, dtype=np.float64) + intercept)))


def threshold_for(calibration, override, model):
    """Return `override` if given, else the calibration's threshold; UserError naming `model` without either."""
    if override is not None:
        return float(override)
    if not calibration:
        raise UserError(f"{model} has no calibrated threshold: run `python -m tripletloss evaluate --model {model} "
                        f"... --calibrate` once, or pass --threshold")
    return float(calibration["threshold"])


def save_calibrated(model, calibration, alignment=None, out=None):
    """Store `calibration` (and `alignment` {template, size, margin}, when given) in checkpoint `model`.

    Written atomically to `out`, or in place after copying the original to MODEL.orig (kept if it exists: it is
    the file as it was before the first calibration). Returns (written Path, backup Path or None).
    """
    ckpt = load_checkpoint(model)
    ckpt["calibration"] = calibration
    if alignment is not None:
        ckpt["preprocess"] = {**ckpt["preprocess"], "align": alignment}
    model, backup = Path(model), None
    if out is None:
        backup = model.with_name(model.name + ".orig")
        if not backup.exists():
            write_atomic(backup, model.read_bytes(), durable=True)
    target = Path(out) if out is not None else model
    save_atomic(ckpt, target)
    return target, backup

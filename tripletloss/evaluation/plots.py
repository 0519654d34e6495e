"""Matplotlib PNGs (Agg, no pyplot state): ROC curve, training curves from metrics.csv, 2-D scatter."""
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from tripletloss.evaluation.runlog import read_metrics

#: plot-loss figures: (metrics.csv key, PNG file name, y label, add a running mean).
MARKERS_UP_TO = 30  # curves with at most this many points are drawn with a marker per point
CURVES = (
    ("train/loss", "loss.png", "loss", True),
    ("train/lr", "lr.png", "learning rate", False),
    ("val/accuracy", "val_accuracy.png", "validation accuracy", False),
)


def save_figure(fig, path):
    """Write Figure `fig` as a PNG to `path` (parent folders created); return the Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def save_roc(heldout, issame, path, title="ROC", operating_point=None):
    """Plot the ROC of held-out pair distances (smaller = more alike) against labels `issame` on a log
    false-accept axis, marking `operating_point` (FAR, VAL) when given (e.g. VAL@FAR=1e-3); return the Path."""
    fpr, tpr, _ = roc_curve(np.asarray(issame, dtype=bool), -np.asarray(heldout))
    floor = 0.5 / max(1, int(np.sum(~np.asarray(issame, dtype=bool))))  # below one false accept: the log axis' left
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot(np.maximum(fpr, floor), tpr, lw=2, label="model")
    grid = np.logspace(np.log10(floor), 0, 50)
    ax.plot(grid, grid, ls="--", c="grey", label="chance")
    if operating_point is not None:
        far, val = operating_point
        ax.plot([max(far, floor)], [val], "o", c="red", label=f"VAL {val:.3f} @ FAR {far:.0e}")
    ax.set(xscale="log", xlabel="false accept rate (log)", ylabel="true accept rate", title=title,
           xlim=(floor, 1), ylim=(0, 1.01))
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def running_mean(values, window):
    """Return the trailing running mean of `values` over `window` points (len(values) - window + 1 points)."""
    window = max(1, min(window, len(values)))
    csum = np.cumsum(np.concatenate([[0.0], values]))
    return (csum[window:] - csum[:-window]) / window


def save_curve(by_stage, path, ylabel, smooth=False):
    """Plot {line name: (steps, values)} as one line each over steps (plus a running mean if `smooth`); lines of
    at most MARKERS_UP_TO points get a marker per point."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for stage, (steps, values) in sorted(by_stage.items()):
        marker = "o" if len(values) <= MARKERS_UP_TO else None           # a run of a few points stays visible
        line, = ax.plot(steps, values, lw=1, marker=marker, ms=4, alpha=0.4 if smooth else 1.0, label=stage)
        if smooth and len(values) > 2:
            window = max(2, len(values) // 20)
            ax.plot(steps[window - 1:], running_mean(values, window), lw=2, c=line.get_color(),
                    label=f"{stage} (mean of {window})")
    ax.set(xlabel="step", ylabel=ylabel, title=ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def run_series(run_dirs):
    """Return {key: {line name: (steps, values)}} of the runs' metrics.csv files: one line per stage, named
    `stage` for one run and `RUN/stage` for several."""
    merged = {}
    for run_dir in run_dirs:
        prefix = f"{Path(run_dir).name}/" if len(run_dirs) > 1 else ""
        for key, by_stage in read_metrics(run_dir).items():
            merged.setdefault(key, {}).update({prefix + stage: v for stage, v in by_stage.items()})
    return merged


def plot_run(run_dirs, out_dir=None):
    """Write one PNG per CURVES quantity present in the metrics.csv of `run_dirs` (one or a list of run
    directories, one line per run and stage) into `out_dir` (default: the first run directory).

    Returns (written Paths, keys absent from every CSV).
    """
    run_dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    series = run_series(run_dirs)
    out_dir = Path(out_dir or run_dirs[0])
    written, missing = [], []
    for key, name, ylabel, smooth in CURVES:
        if key in series:
            written.append(save_curve(series[key], out_dir / name, ylabel, smooth))
        else:
            missing.append(key)
    return written, missing


def save_scatter(points, labels, names, path, title):
    """Plot 2-D `points` (N, 2) coloured by integer `labels` (names[label] in the legend, up to 20)."""
    fig = Figure(figsize=(8, 7))
    ax = fig.add_subplot()
    colours = identity_colours(len(names))
    for label in np.unique(labels):
        sel = labels == label
        ax.scatter(points[sel, 0], points[sel, 1], s=14, color=colours[label], label=names[label])
    if len(names) <= 20:
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.set(title=title, xticks=[], yticks=[])
    return save_figure(fig, path)


def identity_colours(n):
    """Return `n` distinguishable RGB colours (channels 0..1), one per identity: tab10, or for more, points of
    turbo spaced by the golden ratio, so that neighbouring identities (by name) never get neighbouring colours."""
    if n <= 10:
        return [colormaps["tab10"](i)[:3] for i in range(n)]
    return [colormaps["turbo"](0.05 + 0.9 * ((i * 0.6180339887) % 1.0))[:3] for i in range(n)]

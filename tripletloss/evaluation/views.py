"""Pictures of clustered embeddings: one thumbnail grid per cluster and a t-SNE scatter coloured by identity."""
import math
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure
from sklearn.manifold import TSNE

from tripletloss.evaluation.plots import identity_colours, save_figure, save_scatter

THUMB = 64
BORDER = 4
COLUMNS = 8
MAX_PER_GRID = 64


def thumbnail(path, colour):
    """Return an RGB uint8 thumbnail of the image at `path`, THUMB px square, framed in `colour` (RGB 0..1)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    image = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    value = [int(255 * c) for c in colour]
    return cv2.copyMakeBorder(image, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT, value=value)


def save_grid(paths, labels, names, colours, path, title):
    """Write a grid of framed thumbnails of `paths` (at most MAX_PER_GRID), each captioned with its identity."""
    shown = list(zip(paths, labels))[:MAX_PER_GRID]
    cols = min(COLUMNS, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = Figure(figsize=(1.2 * cols, 1.35 * rows + 0.4))
    for n, (image_path, label) in enumerate(shown):
        ax = fig.add_subplot(rows, cols, n + 1)
        ax.imshow(thumbnail(image_path, colours[label]))
        ax.set_title(names[label], fontsize=6, color=colours[label])
        ax.axis("off")
    more = len(paths) - len(shown)
    fig.suptitle(title + (f" (+{more} more)" if more > 0 else ""), fontsize=9)
    return save_figure(fig, path)


def save_cluster_grids(paths, labels, names, pred, out_dir):
    """Write out_dir/cluster_NNN.png, one grid per cluster id in `pred`, largest cluster first; return Paths."""
    colours = identity_colours(len(names))
    paths, labels, pred = np.asarray(paths, dtype=object), np.asarray(labels), np.asarray(pred)
    order = sorted(np.unique(pred), key=lambda c: -np.sum(pred == c))
    written = []
    for rank, c in enumerate(order):
        sel = pred == c
        title = f"cluster {rank}: {sel.sum()} images, {len(np.unique(labels[sel]))} identities"
        written.append(save_grid(list(paths[sel]), labels[sel], names, colours,
                                 Path(out_dir) / f"cluster_{rank:03d}.png", title))
    return written


def save_tsne(emb, labels, names, path, seed=0):
    """Project `emb` (N, D) to 2-D with t-SNE and write a scatter coloured by identity; return the Path."""
    emb = np.asarray(emb, dtype=np.float64)
    perplexity = float(min(30.0, max(2.0, (len(emb) - 1) / 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(emb)
    return save_scatter(points, np.asarray(labels), names, path, f"t-SNE of {len(emb)} embeddings")

"""Pictures of clustered embeddings: one thumbnail grid per cluster and a t-SNE scatter coloured by identity."""
from pathlib import Path

import cv2
import numpy as np
from sklearn.manifold import TSNE

from tripletloss.data.decode import read_image
from tripletloss.evaluation.plots import identity_colours, save_scatter

THUMB = 80             # thumbnail side, pixels
BORDER = 4             # identity-coloured frame
CAPTION = 16           # caption strip under each thumbnail
COLUMNS = 8
MAX_PER_GRID = 64
EXACT_TSNE_MAX = 1000  # t-SNE point count up to which the exact method is used
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _bgr(colour):
    """Return an RGB colour with channels in 0..1 as an OpenCV BGR tuple of ints 0..255."""
    return tuple(int(255 * c) for c in reversed(colour[:3]))


def tile(path, name, colour):
    """Return a BGR uint8 tile: the image at `path` as a THUMB-px thumbnail framed in `colour`, `name` below."""
    image = cv2.cvtColor(read_image(path), cv2.COLOR_RGB2BGR)
    image = cv2.resize(image, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    framed = cv2.copyMakeBorder(image, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT, value=_bgr(colour))
    caption = np.full((CAPTION, framed.shape[1], 3), 255, np.uint8)
    caption[:, :BORDER] = _bgr(colour)  # the frame's colour as a swatch; the name in black stays legible on white
    cv2.putText(caption, name[-13:], (BORDER + 2, CAPTION - 4), FONT, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([framed, caption])


def save_grid(paths, labels, names, colours, path, title):
    """Write a PNG grid of tiles of `paths` (at most MAX_PER_GRID) under a `title` line; return the Path."""
    tiles = [tile(p, names[lab], colours[lab]) for p, lab in list(zip(paths, labels))[:MAX_PER_GRID]]
    cols = min(COLUMNS, len(tiles))
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % cols)
    body = np.vstack([np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)])
    more = len(paths) - min(len(paths), MAX_PER_GRID)
    header = np.full((24, max(body.shape[1], 420), 3), 255, np.uint8)
    cv2.putText(header, title + (f" (+{more} more)" if more else ""), (4, 17), FONT, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    body = cv2.copyMakeBorder(body, 0, 0, 0, header.shape[1] - body.shape[1], cv2.BORDER_CONSTANT,
                              value=(255, 255, 255))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack([header, body]))
    return path


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
    method = "exact" if len(emb) <= EXACT_TSNE_MAX else "barnes_hut"    # exact is faster for small sets
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", method=method, max_iter=500,
                  random_state=seed).fit_transform(emb)
    return save_scatter(points, np.asarray(labels), names, path, f"t-SNE of {len(emb)} embeddings")

"""Pairs file -> image paths -> embeddings -> LFW protocol metrics (the `evaluate` command and the trainer's hook)."""
import functools
from pathlib import Path

import numpy as np

from tripletloss.data.folders import image_files
from tripletloss.data.pairs import image_for_index, read_pairs
from tripletloss.errors import UserError
from tripletloss.evaluation.protocol import count_missing_as_wrong, evaluate_folds

#: The keys of evaluate_pairs()'s result that `evaluate --json` prints.
JSON_KEYS = ("accuracy", "accuracy_std", "val", "val_std", "far", "auc", "eer", "threshold")


def _image_path(roots, name, i, listings, pairs_path, line):
    """Return the file of image `i` of identity `name` under the first of `roots` that has it; UserError naming the
    pairs line when it is missing. `listings` caches each identity folder's image files across calls."""
    identity_dir = next((r / name for r in roots if (r / name).is_dir()), roots[0] / name)
    if not identity_dir.is_dir():
        raise UserError(f"{pairs_path} line {line}: no identity folder {identity_dir}")
    if identity_dir not in listings:
        listings[identity_dir] = image_files(identity_dir)
    try:
        return image_for_index(identity_dir, i, listings[identity_dir])
    except UserError as exc:
        raise UserError(f"{pairs_path} line {line}: {exc}") from None


@functools.lru_cache(maxsize=8)
def _resolve(data_dir, pairs_path, mtime, skip_missing):
    """Cached body of resolve_pairs (keyed on the pairs file's modification time)."""
    roots, listings = [Path(r) for r in data_dir.split(":") if r], {}
    kept, skipped = [], 0
    for k, p in enumerate(read_pairs(pairs_path)):
        line = k + 2                                           # pairs follow the one header line
        try:
            kept.append((_image_path(roots, p.name1, p.i, listings, pairs_path, line),
                         _image_path(roots, p.name2, p.j, listings, pairs_path, line), p.same, p.fold))
        except UserError as exc:
            if not skip_missing:
                raise UserError(f"{exc} (--skip-missing leaves such pairs out and counts them)") from None
            skipped += 1
    paths1, paths2, same, folds = zip(*kept) if kept else ((), (), (), ())
    return paths1, paths2, np.array(same, dtype=bool), np.array(folds, dtype=int), skipped


def resolve_pairs(data_dir, pairs_path, skip_missing=False):
    """Read an LFW pairs file against dataset `data_dir`; return (paths1, paths2, issame, folds, skipped).

    paths1/paths2 are tuples of image Paths, issame a bool array, folds the fold number of each pair from the
    file's layout. An image that is not there is a UserError (one line naming the pairs line and path), or with
    `skip_missing` its pair is left out and counted in `skipped` (facenet's "skipped pairs", e.g. faces the
    aligner could not find).
    """
    pairs_path = Path(pairs_path)
    if not pairs_path.is_file():
        raise UserError(f"pairs file {pairs_path} not found")
    return _resolve(str(data_dir), str(pairs_path), pairs_path.stat().st_mtime_ns, skip_missing)


def embed_pairs(embedder, paths1, paths2, flip=False, progress=False):
    """Embed each distinct image of the pairs once (embedder.embed_faces: raw photos are aligned when it aligns).

    Returns (emb1, emb2, found): float arrays (N, D) and a bool (N,) array, False for pairs with an image where
    no face was found (their rows are zero).
    """
    unique, index = np.unique([str(p) for p in paths1 + paths2], return_inverse=True)
    kept, found = embedder.embed_faces(list(unique), flip=flip, progress=progress)
    emb = np.zeros((len(unique), np.shape(kept)[1] if len(kept) else 1))
    emb[found] = kept
    n = len(paths1)
    return emb[index[:n]], emb[index[n:]], found[index[:n]] & found[index[n:]]


def drop_faceless(found, paths1, paths2, issame, folds, skip_missing):
    """Return the (issame, folds) of the pairs in `found`, or raise UserError naming the images of the first
    pair outside it unless `skip_missing`."""
    if not skip_missing and not found.all():
        k = int(np.argmin(found))
        raise UserError(f"pair {k + 1} ({paths1[k]}, {paths2[k]}): no face found in one of its images "
                        f"(--skip-missing leaves such pairs out and counts them)")
    return issame[found], folds[found]


#: What verify does with a pair whose image is missing: stop (UserError), leave it out, or count it as wrong.
MISSING = ("error", "skip", "wrong")


def verify(embedder, data_dir, pairs_path, flip=False, subtract_mean=False, metric="euclidean", progress=False,
           missing="error"):
    """Run the verification protocol of a pairs file with `embedder`; return (metrics, heldout, issame).

    `missing` (one of MISSING) says what a pair with a missing image does: "error" raises UserError, "skip"
    leaves it out, "wrong" leaves it out of the thresholds and the distance metrics and counts it as wrongly
    classified in accuracy (count_missing_as_wrong). metrics is evaluate_folds()'s dict plus skipped_pairs (pairs
    with a missing image) and missing; heldout the (N,) held-out pair distances and issame the (N,) labels, for
    an ROC plot.
    """
    paths1, paths2, issame, folds, skipped = resolve_pairs(data_dir, pairs_path, missing != "error")
    if not len(issame):
        raise UserError(f"{pairs_path}: no pair has both of its images in {data_dir}")
    emb1, emb2, found = embed_pairs(embedder, paths1, paths2, flip, progress)
    issame, folds = drop_faceless(found, paths1, paths2, issame, folds, missing != "error")
    metrics, heldout = evaluate_folds(emb1[found], emb2[found], issame, folds, metric, subtract_mean)
    if missing == "wrong":                                        # faceless pairs count as missing too
        metrics = count_missing_as_wrong(metrics, folds, [p.fold for p in read_pairs(pairs_path)])
    return dict(metrics, skipped_pairs=skipped, faceless_pairs=int((~found).sum()), missing=missing), heldout, issame


def evaluate_pairs(embedder, data_dir, pairs_path, flip=False, subtract_mean=False, progress=False,
                   skip_missing=True):
    """Return the LFW-protocol metrics dict (JSON_KEYS plus pairs, folds) of `embedder` on a pairs file.

    `embedder` has embed_paths(paths, flip=..., progress=...) -> (N, D) array; every distinct image is
    embedded once per call, and the pairs file is parsed once per (data_dir, file) while it is unchanged, so the
    trainer can call this every few epochs.
    """
    return verify(embedder, data_dir, pairs_path, flip, subtract_mean, progress=progress,
                  missing="skip" if skip_missing else "error")[0]

"""Verification accuracy of one model on faces aligned several ways (e.g. `align --detector hog` vs `auto
--fallback center`), pairs whose image was not aligned counted as wrong (`evaluate --missing-as-wrong`).

    python bench/align_accuracy.py --model CKPT --data-dir ALIGNED_A --data-dir ALIGNED_B [--jitter 0 4]
                                   [--pairs ../shared/data/celeba_subset/splits/pairs_val.txt] [--device cpu]
                                   [--workers 2]

Aligned folders share most of their faces byte for byte (auto runs HOG first), so each distinct file content is
embedded once per jitter setting: the numbers equal `evaluate --missing-as-wrong` on each folder (up to which
of two identical files seeds the jitter) at a fraction of the time. Prints one table row per folder and jitter.
"""
import argparse
import hashlib
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tripletloss import ROOT  # noqa: E402
from tripletloss.data.pairs import read_pairs  # noqa: E402
from tripletloss.evaluation.protocol import count_missing_as_wrong, evaluate_folds  # noqa: E402
from tripletloss.evaluation.verification import resolve_pairs  # noqa: E402
from tripletloss.inference import load_embedder  # noqa: E402

PAIRS = ROOT.parent / "shared" / "data" / "celeba_subset" / "splits" / "pairs_val.txt"


def digest(path):
    """SHA-1 of a file's bytes."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def embed_share(job):
    """Worker: embed the paths of one share with one torch thread; return the (N, D) array."""
    model, device, jitter, paths = job
    torch.set_num_threads(1)
    return load_embedder(model, device=device, jitter=jitter).embed_paths(paths, progress=False)


def embed_distinct(args, jitter, resolved):
    """Embed every distinct file content named by the resolved pairs of all folders once, in args.workers
    processes of one thread each; return {digest: emb}."""
    first = {}
    for paths1, paths2, *_ in resolved:
        for path in paths1 + paths2:
            first.setdefault(digest(path), path)
    paths = list(first.values())
    shares = [(args.model, args.device, jitter, paths[k::args.workers]) for k in range(args.workers)]
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(embed_share, shares))    # not a Pool: its daemonic workers cannot start loaders
    emb = np.empty((len(paths), parts[0].shape[1]), np.float32)
    for k, part in enumerate(parts):
        emb[k::args.workers] = part
    return dict(zip(first, emb))


def row(folder, resolved, table, all_folds):
    """Metrics of one folder's pairs (embeddings from `table`), missing pairs counted wrong."""
    paths1, paths2, issame, folds, skipped = resolved
    emb1, emb2 = (np.stack([table[digest(p)] for p in paths]) for paths in (paths1, paths2))
    metrics, _ = evaluate_folds(emb1, emb2, issame, folds)
    return dict(count_missing_as_wrong(metrics, folds, all_folds), skipped=skipped, folder=folder)


def main():
    """Parse the options, embed, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", action="append", required=True)
    p.add_argument("--pairs", default=str(PAIRS))
    p.add_argument("--jitter", type=int, nargs="+", default=[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2, help="embedding processes, one torch thread each")
    args = p.parse_args()
    resolved = [resolve_pairs(d, args.pairs, skip_missing=True) for d in args.data_dir]
    if not all(len(res[2]) for res in resolved):
        sys.exit(f"{args.pairs}: a folder has no pair with both images")
    all_folds = [pair.fold for pair in read_pairs(args.pairs)]
    print(f"{'folder':<40} {'jitter':>6} {'missing pairs':>13} {'accuracy':>16} {'VAL@1e-3':>9} {'AUC':>7} "
          f"{'embed s':>8}")
    for jitter in args.jitter:
        start = time.perf_counter()
        table = embed_distinct(args, jitter, resolved)
        seconds = time.perf_counter() - start
        for folder, res in zip(args.data_dir, resolved):
            m = row(folder, res, table, all_folds)
            accuracy = f"{100 * m['accuracy']:.2f} ± {100 * m['accuracy_std']:.2f}"
            print(f"{folder:<40} {jitter:>6} {m['skipped']:>13} {accuracy:>16} {m['val']:>9.3f} {m['auc']:>7.4f} "
                  f"{seconds:>8.0f}")


if __name__ == "__main__":
    main()

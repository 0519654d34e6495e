"""Time `evaluate` on a full pairs file: pairs parsing, embedding the distinct images, the 10-fold protocol.

    python bench/bench_evaluate.py --model CKPT [--data-dir ../shared/data/celeba_subset] [--pairs FILE] [--flip]

Prints a table of stage times and images/s, then the metrics.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tripletloss import ROOT  # noqa: E402
from tripletloss.evaluation.protocol import evaluate_folds  # noqa: E402
from tripletloss.evaluation.verification import embed_pairs, resolve_pairs  # noqa: E402
from tripletloss.inference import load_embedder  # noqa: E402

CELEBA = ROOT.parent / "shared" / "data" / "celeba_subset"


def main():
    """Run each stage once, timed; print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", default=str(CELEBA))
    p.add_argument("--pairs", default=str(CELEBA / "splits" / "pairs_val.txt"))
    p.add_argument("--flip", action="store_true")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    embedder = load_embedder(args.model, device=args.device)
    t0 = time.perf_counter()
    paths1, paths2, issame, folds, _ = resolve_pairs(args.data_dir, args.pairs)
    t1 = time.perf_counter()
    emb1, emb2 = embed_pairs(embedder, paths1, paths2, flip=args.flip, progress=False)
    t2 = time.perf_counter()
    metrics, _ = evaluate_folds(emb1, emb2, issame, folds)
    t3 = time.perf_counter()
    n_images = len(np.unique([str(p) for p in paths1 + paths2]))
    print(f"{len(issame)} pairs, {n_images} distinct images, flip={args.flip}, device={args.device}")
    print(f"{'stage':<22}{'seconds':>10}{'per image (ms)':>16}")
    for name, sec in (("read + resolve pairs", t1 - t0), ("embed images", t2 - t1), ("10-fold protocol", t3 - t2),
                      ("total", t3 - t0)):
        print(f"{name:<22}{sec:>10.2f}{1000 * sec / n_images:>16.2f}")
    print(f"embedding throughput: {n_images / (t2 - t1):.1f} images/s")
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()

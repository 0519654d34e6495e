"""Stage 2 with each selection rule, several seeds: verification accuracy on a pairs file (docs/benchmarks.md).

    python bench/selection_rules.py --data-dir /work/data/subset_aligned \
        --identities ../shared/data/celeba_subset/splits/train_identities.txt \
        --pairs ../shared/data/celeba_subset/splits/pairs_val.txt [--seeds 0 1 2] [--epochs 20]

Each run trains fc9_1 on the frozen provided backbone (models/tripletloss_celeba_small.pt, cached features) with
the default settings and one rule; then evaluates its model.pt on --pairs (missing images skipped). pinguo's
batches are 3T images, so it gets as many batches per epoch as see the same number of images as the P x K rules.
The backbone is frozen and the same in every run, so its features (training images, pair images) are computed
once for all runs. Prints a markdown table: accuracy mean +- std over seeds, per seed, and seconds per run.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import train  # noqa: E402
from tripletloss import ROOT  # noqa: E402
from tripletloss.engine.checkpoint import load_checkpoint  # noqa: E402
from tripletloss.evaluation import evaluate_pairs  # noqa: E402
from tripletloss.inference import compute_outputs, net_from_checkpoint  # noqa: E402
from tripletloss.mining import ALL_STRATEGIES  # noqa: E402
from tripletloss.settings import load_settings  # noqa: E402
from tripletloss.stages import factory  # noqa: E402
from tripletloss.stages.training_data import load_training_data  # noqa: E402
from tripletloss.stages.triplet import make_sampler  # noqa: E402

BACKBONE = ROOT / "models" / "tripletloss_celeba_small.pt"
_TRAIN_FEATURES = []
_compute_train_features = factory.cache_features


def _cache_once(*args, **kwargs):
    """stages.features.cache_features computed by the first run and reused by the others (same frozen backbone)."""
    if not _TRAIN_FEATURES:
        _TRAIN_FEATURES.append(_compute_train_features(*args, **kwargs))
    return _TRAIN_FEATURES[0]


class HeadEmbedder:
    """Embedder of a stage-2 model that runs the backbone once per image list over all runs, then only the head."""

    features = {}  # tuple of paths -> (N, F) backbone features, shared by every run

    def __init__(self, model_path):
        ckpt = load_checkpoint(model_path)
        self.net, self.preprocess = net_from_checkpoint(ckpt, model_path).eval(), ckpt["preprocess"]
        self.blob = ckpt["net"]["outputs"]["features"]

    @torch.no_grad()
    def embed_paths(self, paths, batch_size=64, flip=False, progress=True):
        """float32 (N, D) unit embeddings of the images at `paths` (centre crop; `flip` is not supported)."""
        key = tuple(paths)
        if key not in self.features:
            self.features[key] = compute_outputs(self.net, paths, self.preprocess, self.blob, torch.device("cpu"),
                                                 batch_size=batch_size, progress=progress)[0]
        emb = self.net({self.blob: self.features[key]}, ["embedding"])["embedding"]
        return F.normalize(emb.flatten(1), dim=1).numpy().astype(np.float32)


def pk_images_per_epoch(args):
    """Images per epoch of the default P x K sampler on the training identities."""
    settings = load_settings(overrides=[f"data_dir={args.data_dir}", f"train_identities={args.identities}"])
    labels = load_training_data(settings)[1]
    sampler = make_sampler(dict(settings, selection="semihard"), labels)
    return sampler.num_batches * sampler.p * sampler.k


def run_rule(args, rule, seed, work):
    """Train stage 2 with `rule` and `seed` into `work`; return (accuracy on --pairs, seconds)."""
    sets = [f"selection={rule}", f"seed={seed}", f"train_identities={args.identities}", "log_every_steps=1000",
            f"work_dir={work}", f"data_dir={args.data_dir}", f"triplet_epochs={args.epochs}"]
    if rule == "pinguo":  # as many images per epoch as the P x K rules see
        sets.append(f"batches_per_epoch={pk_images_per_epoch(args) // 30}")
    start = time.perf_counter()
    _, run_dir = train.train(train.parse_args(["--stage", "triplet", "--finetune", str(BACKBONE)] +
                                              [x for s in sets for x in ("--set", s)]))
    seconds = time.perf_counter() - start
    metrics = evaluate_pairs(HeadEmbedder(run_dir / "model.pt"), args.data_dir, args.pairs, skip_missing=True)
    return metrics["accuracy"], seconds


def main():
    """Run every rule with every seed and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--identities", required=True, help="training identity list")
    p.add_argument("--pairs", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--rules", nargs="+", default=["semihard", "violating", "batch_hard", "pinguo"],
                   choices=ALL_STRATEGIES)
    args = p.parse_args()
    factory.cache_features = _cache_once
    work = tempfile.mkdtemp(prefix="bench_rules_")
    rows = {rule: [run_rule(args, rule, seed, work) for seed in args.seeds] for rule in args.rules}
    print(f"\nStage 2 on {BACKBONE.name}, {args.epochs} epochs, seeds {args.seeds}, pairs {args.pairs}\n")
    print("| selection | accuracy (mean ± std over seeds) | per seed | s per run |\n|---|---|---|---|")
    for rule, results in rows.items():
        acc = [a for a, _ in results]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(f"| {rule} | {statistics.mean(acc):.4f} ± {std:.4f} | {' '.join(f'{a:.4f}' for a in acc)} | "
              f"{statistics.mean(s for _, s in results):.0f} |")


if __name__ == "__main__":
    main()

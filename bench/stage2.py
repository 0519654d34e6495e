"""Stage-2 epoch time on cached backbone features vs on images (the frozen backbone run every step).

    python bench/stage2.py --data-dir ../shared/data/orl_faces [--epochs 1] [--device cpu]

Prints a markdown table: one-off setup (cache computation), time per epoch, and the per-epoch speed-up.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import train  # noqa: E402
from tripletloss.engine import rng  # noqa: E402
from tripletloss.engine.loop import TrainLoop  # noqa: E402
from tripletloss.engine.run_dir import create_run_dir  # noqa: E402
from tripletloss.settings import load_settings  # noqa: E402
from tripletloss.stages.factory import build_stage  # noqa: E402
from tripletloss.stages.training_data import load_training_data  # noqa: E402


def time_stage2(settings, data, device, epochs):
    """Return (setup seconds, seconds per epoch) of stage 2 with the given settings."""
    rng.seed_everything(settings["seed"])
    start = time.perf_counter()
    stage = build_stage("triplet", settings, data, device, progress=False)
    setup = time.perf_counter() - start
    run_dir = create_run_dir(settings["work_dir"], "triplet", settings)
    loop = TrainLoop(stage, settings, run_dir, epochs, settings["triplet_lr"], device)
    start = time.perf_counter()
    loop.run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return setup, (time.perf_counter() - start) / epochs


def main():
    """Run both variants on --data-dir and print the comparison table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench_stage2_")
    base = [f"data_dir={args.data_dir}", f"work_dir={work}", f"device={args.device}", "log_every_steps=1000"]
    train.train(train.parse_args(["--stage", "softmax", "--epochs", "0"] + sum((["--set", s] for s in base), [])))
    rows = {}
    for cache in (False, True):
        settings = load_settings(overrides=base + [f"cache_features={cache}"])
        device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                              ("cpu" if args.device == "auto" else args.device))
        rows[cache] = time_stage2(settings, load_training_data(settings), device, args.epochs)
    n = len(load_training_data(settings)[0])
    print(f"\nStage 2, default backbone ({settings['image_size']} px), {n} images, device {device}, "
          f"{torch.get_num_threads()} threads\n")
    print("| path | setup (s) | epoch (s) | epoch speed-up |\n|---|---|---|---|")
    for cache, (setup, epoch) in rows.items():
        name = "cached features" if cache else "images (uncached)"
        print(f"| {name} | {setup:.2f} | {epoch:.3f} | {rows[False][1] / epoch:.0f}x |")


if __name__ == "__main__":
    main()

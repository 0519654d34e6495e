"""Fine-tuning a provided model on new identities vs training from scratch (tests/stages/test_finetune.py's protocol).

    python bench/finetune_orl.py --models models/tripletloss_celeba_small.pt models/OTHER.pt [--seeds 0 1]

ORL (40 identities, 7 training and 3 held-out images each): 4 softmax epochs, 2 with only the new fc9, then every
layer from res4a on. Prints a markdown table of held-out classification accuracy per model and seed ("scratch" is
the same run without --finetune).
"""
import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.stages.test_finetune import split_per_identity, val_accuracy  # noqa: E402
from tests.helpers.tiny import run_stage  # noqa: E402
from tripletloss import ROOT  # noqa: E402


def finetune_accuracy(model, train_dir, val_dir, seed, work):
    """Held-out ORL accuracy after the protocol's 4 epochs from `model` (None: from scratch) with `seed`."""
    common = [f"work_dir={work}", "num_workers=0", "softmax_batch_size=32", "softmax_lr=0.05", f"seed={seed}",
              "finetune_freeze_epochs=2", "finetune_unfreeze_from=res4a"]
    extra = ["--finetune", str(model)] if model else []
    _, run_dir = run_stage("softmax", train_dir, common, epochs=4, extra=extra)
    return val_accuracy(run_dir / "model.pt", val_dir)


def main():
    """Parse the command line, run every model x seed, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True, help="checkpoints to fine-tune from")
    p.add_argument("--orl", default=str(ROOT.parent / "shared" / "data" / "orl_faces"), help="ORL folder")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, val_dir = split_per_identity(Path(args.orl), Path(tmp) / "split", n_train=7)
        rows = [(m, [finetune_accuracy(m, train_dir, val_dir, s, Path(tmp) / "runs") for s in args.seeds])
                for m in [*args.models, None]]
    print("| start | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |")
    print("|---|" + "---|" * (len(args.seeds) + 1))
    for model, accs in rows:
        cells = " | ".join(f"{a:.1%}" for a in accs)
        print(f"| {Path(model).name if model else 'scratch'} | {cells} | {sum(accs) / len(accs):.1%} |")


if __name__ == "__main__":
    main()

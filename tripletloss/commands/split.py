"""`tripletloss split DIR OUT`: identity-disjoint train/val split plus an LFW-format val pairs.txt."""
from tripletloss.commands.argtypes import int_in, positive_int
from tripletloss.prepare.split import MODES, split_dataset


def register(subparsers):
    """Add the `split` subcommand to `subparsers`."""
    p = subparsers.add_parser("split", help="identity-disjoint train/val split and val pairs.txt",
                              description="Write OUT/train and OUT/val (per-identity symlinks) or OUT/train.txt "
                                          "and OUT/val.txt (identity names), plus OUT/pairs.txt for val.")
    p.add_argument("dir", help="dataset folder, one sub-folder per identity")
    p.add_argument("out", help="output folder")
    p.add_argument("--val-ratio", type=float, default=0.2, help="share of identities for val (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--mode", default="symlink", choices=MODES, help="symlink folders or name lists")
    p.add_argument("--pairs", type=positive_int, default=300,
                   help="matched and mismatched pairs per fold, lowered if val is too small (default 300)")
    p.add_argument("--folds", type=int_in(2), default=10, help="identity-disjoint folds in pairs.txt (default 10)")
    p.set_defaults(func=run)


def run(args):
    """Split, print what was written; return 0."""
    train, val, pairs = split_dataset(args.dir, args.out, args.val_ratio, args.seed, args.mode,
                                      args.pairs, args.folds)
    folds = len({p.fold for p in pairs})
    print(f"train: {len(train)} identities, val: {len(val)} identities ({args.mode}) in {args.out}; "
          f"pairs.txt: {folds} folds x {len(pairs) // max(folds, 1) // 2} matched + mismatched pairs")
    return 0

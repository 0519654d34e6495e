"""Identity-disjoint train/val split of a dataset, as per-identity symlinks or identity lists, plus val pairs."""
import os
import random
from pathlib import Path

from tripletloss.data.folders import image_counts
from tripletloss.data.pairs import make_pairs, plain_name, write_pairs
from tripletloss.errors import UserError
from tripletloss.outputs import refuse_inside

MODES = ("symlink", "lists")


def split_identities(counts, val_ratio, seed=0):
    """Split {identity: image count} into sorted (train, val) identity lists.

    round(val_ratio * identities) identities (at least 1) go to val, drawn only among identities with >= 2
    images so that matched pairs exist; the rest, single-image identities included, go to train.
    """
    if not 0 < val_ratio < 1:
        raise UserError(f"--val-ratio must be between 0 and 1 (got {val_ratio})")
    eligible = sorted(k for k, v in counts.items() if v >= 2)
    n_val = min(max(1, round(val_ratio * len(counts))), len(eligible))
    val = set(random.Random(seed).sample(eligible, n_val))
    return sorted(set(counts) - val), sorted(val)


def write_symlinks(root, folder, names):
    """Create `folder`/<identity> symlinks to the absolute root/<identity> folders."""
    folder.mkdir(parents=True)
    for name in names:
        os.symlink(Path(root).resolve() / name, folder / name, target_is_directory=True)


#: Everything split writes into OUT, in either mode.
OUTPUTS = ("train", "val", "train.txt", "val.txt", "pairs.txt")


def check_output(root, out):
    """Raise UserError when OUT lies inside the dataset `root` or already holds a split (in any mode): a split is
    written whole into a fresh place, never mixed with another one."""
    refuse_inside(out, root, "OUT")
    existing = [name for name in OUTPUTS if (Path(out) / name).exists() or (Path(out) / name).is_symlink()]
    if existing:
        raise UserError(f"{out} already holds a split ({', '.join(existing)}); choose another OUT or remove it")


def split_dataset(root, out, val_ratio=0.2, seed=0, mode="symlink", num_pairs=300, num_folds=10):
    """Split dataset `root` into OUT (symlinks OUT/train, OUT/val or lists OUT/train.txt, OUT/val.txt).

    Also writes OUT/pairs.txt (LFW format) over the val identities. Returns (train names, val names, pairs).
    """
    if mode not in MODES:
        raise UserError(f"--mode must be one of {', '.join(MODES)} (got {mode!r})")
    check_output(root, out)
    counts = image_counts(root)
    for name in counts:  # names end up in line-based files (pairs.txt, the lists)
        plain_name(name, root)
    train, val = split_identities(counts, val_ratio, seed)
    pairs = make_pairs({name: counts[name] for name in val}, num_pairs, num_folds, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for part, names in (("train", train), ("val", val)):
        if mode == "symlink":
            write_symlinks(root, out / part, names)
        else:
            (out / f"{part}.txt").write_text("".join(f"{name}\n" for name in names))
    write_pairs(out / "pairs.txt", pairs)
    return train, val, pairs

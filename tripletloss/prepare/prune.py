"""Pruning: move identities with too few images out of a dataset (OpenFace's prune-dataset.py, non-destructive)."""
import shutil
from pathlib import Path

from tripletloss.data.folders import identity_dirs, image_files
from tripletloss.errors import UserError


def pruned_dir(root):
    """Return the folder pruned identities go to: a sibling of `root` named <root name>_pruned."""
    root = Path(root).resolve()
    return root.parent / f"{root.name}_pruned"


def small_identities(root, min_images):
    """Return [(identity folder, image count)] for identities of `root` with fewer than `min_images` images."""
    if min_images < 1:
        raise UserError(f"--min-images must be >= 1 (got {min_images})")
    return [(d, n) for d in identity_dirs(root) if (n := len(image_files(d))) < min_images]


def prune_dataset(root, min_images=10, dry_run=False):
    """Move identities of `root` with fewer than `min_images` images to pruned_dir(root) (unless dry_run).

    Returns the [(identity folder, image count)] that were (or, with dry_run, would be) moved.
    """
    small = small_identities(root, min_images)
    if dry_run:
        return small
    target_root = pruned_dir(root)
    clash = [target_root / ident.name for ident, _ in small if (target_root / ident.name).exists()]
    if clash:  # checked before anything moves, so an error never leaves a half-pruned dataset
        raise UserError(f"{clash[0]} already exists; move it away before pruning {clash[0].name} again")
    if small:
        target_root.mkdir(exist_ok=True)
    for ident, _ in small:
        shutil.move(str(ident), str(target_root / ident.name))
    return small

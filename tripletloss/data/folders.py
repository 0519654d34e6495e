"""The one-folder-per-identity layout ROOT/<identity>/<image files>, listed in a fixed (sorted) order.

Training reads several roots joined with ':' (as in facenet) with `scan_folders`; the dataset commands (check,
align, prune, split) list one root with `identity_dirs` and `image_counts`; `image_files` is the order in which
an identity's images are numbered (pairs files).
"""
from pathlib import Path

from tripletloss.errors import UserError

#: File extensions (lower case) read as images, everywhere in the toolkit (OpenCV decodes all of them).
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}


def listing(folder):
    """Return the entries of `folder` (Paths); UserError naming it when it cannot be listed (permissions)."""
    try:
        return list(Path(folder).iterdir())
    except OSError as exc:
        raise UserError(f"{folder}: cannot list this folder ({exc.strerror})") from None


def subfolders(root):
    """Return the sorted non-hidden sub-folders of `root`; UserError when `root` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder")
    return sorted(p for p in listing(root) if p.is_dir() and not p.name.startswith("."))


def image_files(identity_dir):
    """Return the sorted (by file name) image files of one identity folder, hidden files excluded."""
    return sorted((p for p in listing(identity_dir)
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS),
                  key=lambda p: p.name)


def identity_dirs(root):
    """Return the sorted identity folders of dataset `root`: sub-folders holding at least one image file.

    Other sub-folders (such as a splits/ folder of text files) are not identities. UserError if there is none.
    """
    dirs = [d for d in subfolders(root) if image_files(d)]
    if not dirs:
        raise UserError(f"{root} has no identity sub-folders with images (expected ROOT/<identity>/<images>)")
    return dirs


def image_counts(root):
    """Return {identity name: number of image files} for every identity folder of `root`."""
    return {d.name: len(image_files(d)) for d in identity_dirs(root)}


def read_identity_list(path):
    """Return the identity names listed one per line in the text file at `path` (blank lines ignored)."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def scan_folders(data_dir, identities=None, exclude=(), min_images=1):
    """Scan `data_dir` (roots joined with ':'); return (paths, labels, class_names).

    Identities are the sub-folders; the same name under several roots is one identity. `identities`, if given,
    keeps only those names; names in `exclude` and identities with fewer than `min_images` images (counted after
    joining the roots) are dropped. Paths are sorted within an identity, identities sorted by name; labels index
    class_names. Raises UserError naming the folder when no identity is left.
    """
    found = {}
    for root in filter(None, str(data_dir).split(":")):
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"{root}: data directory does not exist")
        for ident in subfolders(root):
            files = image_files(ident)
            if files:
                found.setdefault(ident.name, []).extend(files)
    if identities is not None:
        wanted = set(identities)
        found = {k: v for k, v in found.items() if k in wanted}
    dropped = set(exclude)
    found = {k: v for k, v in found.items() if k not in dropped and len(v) >= min_images}
    if not found:
        raise UserError(f"{data_dir}: no identity folders with images found (expected <dir>/<identity>/<image>; "
                        "exclude_identities and min_images_per_identity may have removed them all)")
    class_names = sorted(found)
    paths, labels = [], []
    for label, name in enumerate(class_names):
        paths += [str(p) for p in sorted(found[name])]
        labels += [label] * len(found[name])
    return paths, labels, class_names

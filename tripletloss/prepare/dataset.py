"""The one-folder-per-identity layout: ROOT/<identity>/<image files>, listed in a fixed (sorted) order."""
from pathlib import Path

from tripletloss.errors import UserError

#: File extensions (lower case) treated as images.
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}


def subfolders(root):
    """Return the sorted non-hidden sub-folders of `root`; UserError when `root` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def identity_dirs(root):
    """Return the sorted identity folders of dataset `root`: sub-folders holding at least one image file.

    Other sub-folders (such as a splits/ folder of text files) are not identities. UserError if there is none.
    """
    dirs = [d for d in subfolders(root) if image_files(d)]
    if not dirs:
        raise UserError(f"{root} has no identity sub-folders with images (expected ROOT/<identity>/<images>)")
    return dirs


def image_files(identity_dir):
    """Return the sorted (by file name) image files of one identity folder, hidden files excluded."""
    return sorted((p for p in Path(identity_dir).iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS),
                  key=lambda p: p.name)


def image_counts(root):
    """Return {identity name: number of image files} for every identity folder of `root`."""
    return {d.name: len(image_files(d)) for d in identity_dirs(root)}

"""The one-folder-per-identity layout: ROOT/<identity>/<image files>, listed in a fixed (sorted) order."""
from tripletloss.data.folders import image_files, subfolders
from tripletloss.errors import UserError


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

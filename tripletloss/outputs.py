"""Checks that keep a command's outputs from clobbering its inputs: never into the dataset it reads, never a file
where a folder is (or the reverse)."""
from pathlib import Path

from tripletloss.errors import UserError


def refuse_inside(out, data_dirs, flag):
    """Raise UserError naming `flag` when path `out` is one of the dataset folders `data_dirs` (a path, or
    several joined with ':') or lies inside one: a command never writes into the dataset it reads."""
    target = Path(out).resolve()
    for root in filter(None, str(data_dirs).split(":")):
        root = Path(root).resolve()
        if target == root or root in target.parents:
            raise UserError(f"{flag} {out}: inside the input dataset {root}; write outputs elsewhere")


def file_target(path, flag):
    """Raise UserError naming `flag` when `path` is an existing folder (the option wants a file name);
    return `path` as a Path."""
    path = Path(path)
    if path.is_dir() or str(path).endswith("/"):
        raise UserError(f"{flag} {path}: a folder; give a file name")
    return path


def folder_target(path, flag):
    """Raise UserError naming `flag` when `path` is an existing file (the option wants a folder); return it as
    a Path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: an existing file; give a folder")
    return path

"""Finding the files a setting names: as given, or relative to the repository root (the bundled YAML files)."""
from pathlib import Path

from tripletloss import ROOT


def resolve_path(path):
    """Return `path` as given if it exists, else relative to the repository root (for the bundled YAML files)."""
    path = Path(path)
    return path if path.exists() or path.is_absolute() else ROOT / path

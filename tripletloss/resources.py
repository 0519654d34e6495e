"""Where tripletloss's own files are: the YAML layer lists (prototxt_like/), the CUDA kernels (kernels/), the
default config.py, and the cache of generated data.

They are named as in the repository ("prototxt_like/softmax.yaml", "kernels/mining.cu", "config.py"). In a source
checkout (running from the repository, or an editable install) a name is the repository's top-level file, the one
users edit, so an edit takes effect without reinstalling. An installed wheel carries copies of them inside the
package, under tripletloss/_resources/ (setup.py's build step puts them there), found with importlib.resources; the
package folder then holds that copy, which a checkout never has.
"""
import importlib.resources
import os
from pathlib import Path

from tripletloss import ROOT

#: The folder of the installed package that holds the copies of the bundled files (absent in a source checkout).
PACKAGED = "_resources"


def packaged():
    """Return the Path of the installed package's copies (tripletloss/_resources/), or None in a source checkout.

    pip installs a package as plain files, so importlib.resources gives a real folder (zipped installs are not
    supported: settings, YAML layer lists and their includes are read as files).
    """
    folder = importlib.resources.files("tripletloss") / PACKAGED
    return Path(str(folder)) if folder.is_dir() else None


def base():
    """Return the folder that bundled names are relative to: the package's copies when installed, else ROOT."""
    return packaged() or ROOT


def path(name):
    """Return the Path of the bundled file `name` (such as "prototxt_like/softmax.yaml"); it may not exist."""
    return base() / name


def name_of(file):
    """Return `file` as a bundled name (relative to base()) when it lies there, else `file` as a string."""
    try:
        return str(Path(file).resolve().relative_to(base().resolve()))
    except ValueError:
        return str(file)


def cache_dir():
    """Return the Path of the cache of generated data: ROOT/.cache in a source checkout (git-ignored), else
    $XDG_CACHE_HOME/tripletloss (~/.cache/tripletloss when that is unset or, against the XDG spec, relative), never
    inside the installed package."""
    if packaged() is None:
        return ROOT / ".cache"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "tripletloss"


def resolve_path(name):
    """Return the Path a setting's file name means: `name` as given if it exists or is absolute, else the bundled
    file of that name ("prototxt_like/softmax.yaml": the repository's in a source checkout, the package's copy when
    installed)."""
    given = Path(name)
    return given if given.exists() or given.is_absolute() else path(given)

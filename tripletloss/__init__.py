"""tripletloss: two-stage face-embedding training in the spirit of the Caffe "tripletloss" project."""
from pathlib import Path

__version__ = "0.1.0"

#: The folder holding the package: the repository root in a source checkout (tests and bench use it). The package
#: finds its own files (config.py, prototxt_like/, kernels/) through tripletloss.resources, also when installed.
ROOT = Path(__file__).resolve().parent.parent

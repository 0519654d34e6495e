"""tripletloss: two-stage face-embedding training in the spirit of the Caffe "tripletloss" project."""
from pathlib import Path

__version__ = "0.1.0"

#: Repository root (holds config.py, prototxt_like/ and kernels/ in a source checkout).
ROOT = Path(__file__).resolve().parent.parent

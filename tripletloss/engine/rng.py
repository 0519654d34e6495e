"""Capturing and restoring every random number generator (python, numpy, torch CPU and the current CUDA device).

States are stored as tensors and plain Python values so checkpoints load with weights_only=True.
"""
import random

import numpy as np
import torch


def seed_everything(seed):
    """Seed python's, numpy's and torch's (CPU and CUDA) global generators with `seed`."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def capture():
    """Return the current state of every global generator as a weights_only-safe dict."""
    version, keys, gauss = random.getstate()
    name, np_keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(keys), gauss], "numpy": [name, torch.from_numpy(np_keys.astype(np.int64)),
                                                               pos, has_gauss, cached],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()  # the current device only: no context on other GPUs
    return state


def restore(state):
    """Restore the generators from a dict made by `capture()`."""
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, np_keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np_keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])

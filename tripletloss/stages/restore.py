"""Starting a stage's net from a checkpoint: restoring the layers that fit, and saying which did."""
from typing import NamedTuple

from tripletloss.console import say
from tripletloss.engine.checkpoint import load_checkpoint, restore_layers, summarise
from tripletloss.errors import CheckpointError


class Checkpoint(NamedTuple):
    """A checkpoint read once: its path as given (for messages) and its dict (engine.checkpoint's format)."""
    path: object
    contents: dict


def read_checkpoint(path):
    """Load the checkpoint at `path` (weights_only); return it as a Checkpoint. CheckpointError naming the file
    when it is missing, unreadable or damaged."""
    return Checkpoint(path, load_checkpoint(path))


def init_from_checkpoint(net, checkpoint, skip=()):
    """Restore every layer of `net` that matches `checkpoint` (a Checkpoint) by name and shape, except layers in
    `skip`. Says which layers were restored, re-initialised or skipped; returns nothing.

    Raises CheckpointError, naming the mismatched layers and shapes, when no layer at all is restored (another
    architecture) or when a frozen layer (lr_mult 0, e.g. stage 2's backbone) is not: it would stay random.
    """
    path = checkpoint.path
    state = {k: v for k, v in checkpoint.contents["model"].items() if k.split(".", 1)[0] not in skip}
    report = restore_layers(net, state, path)
    missing = [name for name in net.frozen_layers() if name in report["reinitialised"]]
    if not report["restored"] or missing:
        about = [line for line in report["skipped"] if not missing or line.split(".", 1)[0] in missing]
        what = f"frozen layers {', '.join(missing)} would stay random" if missing else "no layer fits this network"
        raise CheckpointError(f"{path}: {what} ({summarise(about or ['they are not in it'])})")
    say(f"from {path}: restored {len(report['restored'])} layers ({', '.join(report['restored'])})")
    say(f"  re-initialised: {', '.join(report['reinitialised']) or 'none'}")
    for line in report["skipped"] + [f"{name}: re-initialised on purpose" for name in skip]:
        say(f"  skipped {line}")

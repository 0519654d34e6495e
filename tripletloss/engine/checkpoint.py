"""Writing checkpoints atomically and reading them safely (torch.load with weights_only=True)."""
import io
import pickle
import re
from pathlib import Path

import torch

from tripletloss.atomic import write_atomic
from tripletloss.errors import CheckpointError

FORMAT = "tripletloss-checkpoint-v1"
_UNSAFE = re.compile(r"Unsupported global: GLOBAL (\S+)")


def save_atomic(obj, path):
    """torch.save `obj` to `path` atomically and durably (tripletloss.atomic): a crash never leaves half a file."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getbuffer(), durable=True)


def load_checkpoint(path):
    """Load a checkpoint dict from `path` with weights_only=True; raise CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated or empty file, or a pickled object weights_only refuses
        found = _UNSAFE.search(str(exc)) if isinstance(exc, pickle.UnpicklingError) else None
        if found:
            raise CheckpointError(f"{path}: refused: it holds a pickled Python object ({found[1]}) that could run "
                                  f"code, and checkpoints are loaded with weights_only=True") from None
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"{path}: not a readable checkpoint, corrupt or truncated ({path.stat().st_size} "
                              f"bytes; {type(exc).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tripletloss checkpoint (no format '{FORMAT}')")
    check_record(ckpt, path)
    return ckpt


#: Entries of a checkpoint and their types; a checkpoint of a stage must hold those marked True.
RECORD = {"net": (dict, False), "model": (dict, True), "live_model": (dict, False), "preprocess": (dict, True)}
PREPROCESS = {"size": int, "resize": int, "mean": list, "std": list}


def check_record(ckpt, path):
    """Raise CheckpointError naming `path` when checkpoint dict `ckpt` (damaged or tampered with) lacks an entry
    its stage needs (RECORD), holds one of another type, lacks a PREPROCESS key, or when its weights hold NaN/inf
    (check_finite), the trained weights beside a moving average (`live_model`, what a resume continues) too."""
    for key, (kind, needed) in RECORD.items():
        if (key in ckpt or needed and "stage" in ckpt) and not isinstance(ckpt.get(key), kind):
            raise CheckpointError(f"{path}: damaged checkpoint: '{key}' is missing or not a {kind.__name__}")
    for key, kind in PREPROCESS.items() if "preprocess" in ckpt else ():
        if not isinstance(ckpt["preprocess"].get(key), kind):
            raise CheckpointError(f"{path}: damaged checkpoint: preprocess '{key}' is missing or not a "
                                  f"{kind.__name__}")
    for key in ("model", "live_model"):
        check_finite(ckpt.get(key, {}), path)


def first_nonfinite(state):
    """Return 'name: N of M values are NaN or inf' for the first floating tensor of `state` ({name: tensor})
    holding any, or None when all are finite."""
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            return f"{key}: {int((~torch.isfinite(value)).sum())} of {value.numel()} values are NaN or inf"
    return None


def check_finite(state, path):
    """Raise CheckpointError naming `path` and the first tensor of `state` ({name: tensor}) holding NaN or inf,
    or an entry that is not a tensor."""
    wrong = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if wrong:
        raise CheckpointError(f"{path}: damaged checkpoint: weight '{wrong[0]}' is not a tensor")
    bad = first_nonfinite(state)
    if bad:
        raise CheckpointError(f"{path}: refused: non-finite weights ({bad}); use an earlier checkpoint")


_STEP = re.compile(r"^step-(\d+)\.pt$")


def step_checkpoints(run_dir):
    """Return the run's `step-N.pt` checkpoints sorted by N (oldest first)."""
    found = [(int(m.group(1)), p) for p in Path(run_dir).glob("step-*.pt") if (m := _STEP.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(run_dir, keep):
    """Delete all but the newest `keep` step checkpoints of `run_dir` (best.pt and model.pt are kept)."""
    for path in step_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)


def latest_checkpoint(run_dir):
    """Return the newest step checkpoint of `run_dir`, or None."""
    found = step_checkpoints(run_dir)
    return found[-1] if found else None


def restore_layers(net, state, source):
    """Copy every tensor of `state` (layer-name keyed) whose name and shape match into `net`.

    Returns {"restored": [layer names], "reinitialised": [layers of net not fully restored],
    "skipped": ["name: why" for checkpoint layers that did not fit]}.
    """
    own = net.layers.state_dict()
    restored, skipped = {}, []
    for key, value in state.items():
        if key not in own:
            skipped.append(f"{key}: not in this network")
        elif own[key].shape != value.shape:
            skipped.append(f"{key}: shape {tuple(value.shape)} in {source}, {tuple(own[key].shape)} here")
        else:
            restored[key] = value
    own.update(restored)
    net.layers.load_state_dict(own)
    layer_of = lambda k: k.split(".", 1)[0]  # noqa: E731
    done = {layer_of(k) for k in restored}
    partial = {layer_of(k) for k in own if k not in restored}
    return {"restored": sorted(done - partial), "reinitialised": sorted(partial),
            "skipped": skipped}


def load_exact(net, state, source):
    """Load `state` into `net` requiring identical layer names and shapes; raise CheckpointError listing mismatches."""
    own = net.layers.state_dict()
    problems = [f"{k} missing" for k in own if k not in state]
    problems += [f"{k} unexpected" for k in state if k not in own]
    problems += [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                 if k in state and state[k].shape != v.shape]
    if problems:
        raise CheckpointError(f"{source}: does not match this network's layers ({summarise(problems)})")
    net.layers.load_state_dict(state)


def summarise(problems, shown=6):
    """Join the first `shown` problem strings with '; ' and say how many more there are (for one-line errors)."""
    more = f"; ... {len(problems) - shown} more" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more

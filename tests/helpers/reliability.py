"""Helpers for the reliability tests: run train.py as a real process on a small slice of real faces.

Every test here drives `python train.py` in a subprocess (the way a user does), with the tiny 32 px network of
tests/helpers/tiny.py, a few ORL identities and checkpoints written to a temporary work dir.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.helpers.tiny import TINY_SOFTMAX_DROPOUT, tiny_overrides
from tripletloss import ROOT

#: One thread per process: the tests run two trainings side by side on a 2-core machine.
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def subset_overrides(root, data_dir, identities=8, extra=()):
    """Write the tiny nets (stage 1 with dropout) and an identity list (the first `identities` folders of
    `data_dir`) under `root`.

    Returns the `--set` overrides for a deterministic run on them, work_dir `root`/runs, plus `extra`.
    """
    root = Path(root)
    overrides = tiny_overrides(root)
    (root / "nets" / "softmax.yaml").write_text(TINY_SOFTMAX_DROPOUT)
    names = sorted(p.name for p in Path(data_dir).iterdir() if p.is_dir())[:identities]
    (root / "identities.txt").write_text("\n".join(names) + "\n")
    return overrides + [f"data_dir={data_dir}", f"train_identities={root / 'identities.txt'}",
                        "deterministic=true", *extra]


def train_cmd(stage, overrides, *args):
    """The command line `python train.py --stage STAGE --set ... ARGS` as a list."""
    sets = [x for item in overrides for x in ("--set", item)]
    return [sys.executable, str(ROOT / "train.py"), "--stage", stage, *sets, *map(str, args)]


def start(cmd, **kw):
    """Start `cmd` (from train_cmd) in its own process group, capturing text stdout/stderr; return the Popen."""
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def finish(proc, timeout=120):
    """Wait for Popen `proc`; return a CompletedProcess with its exit code and captured output."""
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run(cmd, timeout=120):
    """Run `cmd` to completion; return the CompletedProcess (returncode, stdout, stderr)."""
    return finish(start(cmd), timeout)


def run_dirs(work_dir, stage):
    """The run directories of `stage` in `work_dir`, oldest first."""
    return sorted(p for p in Path(work_dir).glob(f"{stage}-*") if p.is_dir())


def step_files(run_dir):
    """Names of the step-N.pt checkpoints currently in `run_dir`."""
    return {p.name for p in Path(run_dir).glob("step-*.pt")}


def wait_for_checkpoints(proc, work_dir, stage, count, timeout=90):
    """Poll until the running `proc` has written `count` distinct step checkpoints; return the run dir.

    Fails the test if the process ends first (it would have finished before the signal could be sent).
    """
    seen, deadline = set(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = run_dirs(work_dir, stage)
        if runs:
            seen |= step_files(runs[-1])
            if len(seen) >= count:
                return runs[-1]
        if proc.poll() is not None:
            raise AssertionError(f"training ended (code {proc.returncode}) after {len(seen)} checkpoints, "
                                 f"before {count}:\n{proc.stderr.read()[-2000:]}")
        time.sleep(0.005)
    raise AssertionError(f"no {count} checkpoints within {timeout} s")


def kill(proc, signum=signal.SIGKILL):
    """Send `signum` to `proc` alone (not its process group)."""
    os.kill(proc.pid, signum)


def load(path):
    """torch.load a checkpoint file safely (weights_only=True)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_bit_identical(model_a, model_b):
    """Assert the weights and buffers of two model.pt files are bit for bit the same."""
    a, b = load(model_a)["model"], load(model_b)["model"]
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"{model_a} and {model_b} differ in {differing}"

"""Run directories: work_dir/<stage>-<YYYYmmdd-HHMMSS>/ holding config.yaml, checkpoints, metrics and logs."""
import fcntl
import os
import time
from pathlib import Path

import yaml

from tripletloss.atomic import remove_stale_temps, write_atomic
from tripletloss.errors import UserError

LOCK_NAME = ".lock"
_HELD = []  # open lock files: the lock lasts as long as this process (the OS drops it even on SIGKILL)


def _take(lock, run_dir):
    """flock open file `lock` (run_dir's lock file) exclusively; UserError naming the holder's pid if taken."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise UserError(f"{run_dir}: another training process (pid {holder}) is running this run; wait for it to "
                        f"end or stop it first") from None


def refuse_if_running(run_dir):
    """Raise UserError (as claim_run_dir) when another process holds run_dir's lock; creates nothing."""
    if (Path(run_dir) / LOCK_NAME).is_file():
        with open(Path(run_dir) / LOCK_NAME) as lock:
            _take(lock, run_dir)


def claim_run_dir(run_dir):
    """Take run_dir/.lock for the rest of this process's life and delete checkpoint temp files of dead writers.

    Raises UserError when another process holds the lock (two trainings of one run would overwrite each
    other's checkpoints). Returns nothing.
    """
    lock = open(Path(run_dir) / LOCK_NAME, "a+")
    _take(lock, run_dir)
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    _HELD.append(lock)
    remove_stale_temps(run_dir)


def release_run_dirs():
    """Release every run-directory lock this process holds (when its training ends); return nothing."""
    while _HELD:
        _HELD.pop().close()


def create_run_dir(work_dir, stage, settings):
    """Create a fresh dated run directory for `stage` under `work_dir`, save the resolved settings; return it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(work_dir) / f"{stage}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    run_dir.mkdir(parents=True)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(dict(settings), sort_keys=False))
    return run_dir


def _runs(work_dir, stage):
    """The run directories of `stage` in `work_dir`, oldest first (their names are dated)."""
    return sorted(p for p in Path(work_dir).glob(f"{stage}-*") if p.is_dir())


def latest_run_dir(work_dir, stage):
    """Return the newest run directory of `stage` in `work_dir` (by its dated name), or None."""
    runs = _runs(work_dir, stage)
    return runs[-1] if runs else None


def final_model(work_dir, stage):
    """Return the newest finished model (model.pt) of `stage` in `work_dir`; raise UserError if there is none."""
    runs = [p for p in _runs(work_dir, stage) if (p / "model.pt").is_file()]
    if not runs:
        raise UserError(f"{work_dir}: no finished '{stage}' run (no {stage}-*/model.pt); "
                        f"run `python train.py --stage {stage}` first or pass --finetune PATH")
    return runs[-1] / "model.pt"

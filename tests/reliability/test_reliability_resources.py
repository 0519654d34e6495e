"""Bounded resources around a real training process: num_workers is capped by the machine, DataLoader workers
die with the trainer (none survive its SIGKILL), a run directory is trained by one process at a time, and the
temp files of checkpoint writes killed half-way are removed when the run is resumed."""
import os
import time

import train
from tests.helpers.hostile import run_main
from tests.helpers.reliability import kill, start, subset_overrides, train_cmd, wait_for_checkpoints
from tripletloss.atomic import TMP_MARK
from tripletloss.data.workers import worker_cap


def children(pid):
    """PIDs of the live (not zombie) processes whose parent is `pid`."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry))
    return found


def alive(pids):
    """The PIDs of `pids` still running (zombies count as gone)."""
    def running(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rpartition(")")[2].split()[0] != "Z"
        except FileNotFoundError:
            return False
    return [pid for pid in pids if running(pid)]


def dead_pid():
    """A PID that no process has (a child that has exited and been reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_workers_capped_tied_to_the_trainer_and_one_process_per_run(tmp_path, orl_dir, capsys):
    overrides = subset_overrides(tmp_path, orl_dir, extra=["num_workers=100000", "decode_cache=false",
                                                         "checkpoint_every_steps=1", "softmax_epochs=50"])
    proc = start(train_cmd("softmax", overrides))
    run_dir = wait_for_checkpoints(proc, tmp_path / "runs", "softmax", 1, timeout=300)
    workers = children(proc.pid)
    assert 1 <= len(workers) <= worker_cap()

    code, _, err = run_main(train.main, ["--stage", "softmax", "--resume", run_dir, "--epochs", "1"], capsys)
    assert code == 2 and err.strip() == (f"error: {run_dir}: another training process (pid {proc.pid}) is "
                                         "running this run; wait for it to end or stop it first")

    kill(proc)
    _, trainer_err = proc.communicate(timeout=30)
    assert f"note: num_workers=100000 capped to {worker_cap()}" in trainer_err
    deadline = time.monotonic() + 10
    while alive(workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(workers), "DataLoader workers outlived the SIGKILLed trainer"

    stale = run_dir / f".step-999.pt{TMP_MARK}{dead_pid()}"
    stale.write_bytes(b"half a checkpoint")
    train.main(["--stage", "softmax", "--resume", str(run_dir), "--epochs", "1"])  # returns (exit 0) when done
    err = capsys.readouterr().err
    assert not stale.exists()
    assert f"note: num_workers=100000 capped to {worker_cap()}" in err

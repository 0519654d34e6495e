"""DataLoader worker processes kept within the machine's means and tied to their parent's life."""
import ctypes
import functools
import os
import signal
import sys

from torch.utils.data import DataLoader

#: Memory a DataLoader worker may take (its torch import, a batch in flight); caps workers on small machines.
WORKER_MEMORY = 512 << 20
_PR_SET_PDEATHSIG = 1
_NOTED = set()


def available_memory():
    """Bytes of memory available to new processes (MemAvailable of /proc/meminfo), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def worker_cap():
    """The most DataLoader workers worth starting: one per CPU core, and no more than memory holds (>= 1)."""
    memory = available_memory()
    by_memory = memory // WORKER_MEMORY if memory is not None else os.cpu_count()
    return max(1, min(os.cpu_count() or 1, by_memory))


def capped_workers(requested):
    """Return `requested` DataLoader workers limited to worker_cap(); print a note (once) when it caps them."""
    cap = worker_cap()
    if requested <= cap:
        return requested
    if requested not in _NOTED:
        _NOTED.add(requested)
        print(f"note: num_workers={requested} capped to {cap} ({os.cpu_count()} CPU cores, "
              f"{(available_memory() or 0) / 2**30:.1f} GiB available)", file=sys.stderr)
    return cap


def die_with_parent(parent_pid):
    """In a child process: ask Linux to SIGKILL it when its parent dies, and exit now if `parent_pid` is already
    gone (it died before the request). Does nothing elsewhere than Linux."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def _init_worker(parent_pid, worker_id):
    """DataLoader worker init: die with the parent; ignore SIGINT/SIGTERM, which the main process turns into a
    checkpoint and a clean exit (a signal sent to the whole process group, e.g. Ctrl-C or a batch scheduler,
    would otherwise kill the workers mid-batch and the main process would die with "DataLoader worker exited
    unexpectedly")."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(dataset, num_workers, **kwargs):
    """A torch DataLoader over `dataset` with at most capped_workers(num_workers) workers, each of which dies with
    this process and leaves stop signals to it; `kwargs` go to DataLoader. Returns the DataLoader."""
    return DataLoader(dataset, num_workers=capped_workers(num_workers),
                      worker_init_fn=functools.partial(_init_worker, os.getpid()), **kwargs)

"""Replacing files atomically: write a temp file beside the target, then rename it onto the target, so neither a
reader nor a run killed half-way ever sees half a file."""
import os
import re
from pathlib import Path

#: Marks temp files; the writer's PID follows it (tripletloss.prepare.align removes those of dead writers).
TMP_MARK = ".tmp-"


def temp_path(path):
    """The temp file beside `path` that this process writes before the rename: `.{name}.tmp-{pid}`."""
    path = Path(path)
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def writer_pid(tmp):
    """The PID in a temp file name made by temp_path (or by earlier versions, which added the target's suffix
    after it: `.a.tmp-1234.jpg`), or None when `tmp` is not one."""
    match = re.match(r"\d+", Path(tmp).name.rpartition(TMP_MARK)[2]) if TMP_MARK in Path(tmp).name else None
    return int(match.group()) if match else None


def remove_stale_temps(folder, pattern=f".*{TMP_MARK}*"):
    """Delete the temp files matching glob `pattern` under `folder` whose writer process no longer exists (left
    by killed runs); return how many were removed."""
    stale = [tmp for tmp in Path(folder).glob(pattern) if writer_pid(tmp) is not None and not _alive(writer_pid(tmp))]
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return len(stale)


def _alive(pid):
    """Whether a process with this PID exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(path, data, durable=False):
    """Replace `path` with `data` (bytes-like, or str written as UTF-8) via temp_path(path) and a rename.

    With `durable`, the file and its folder are fsynced too, so the new content survives a power loss.
    Returns `path` as a Path; on any error the temp file is removed and `path` is left as it was.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path

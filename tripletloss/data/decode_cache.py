"""A uint8 cache of decoded training images, so that each file is decoded and resized once, not every epoch.

It lives in WORK_DIR/.decode_cache/<geometry>/ (never in the dataset folder): `images-<token>.npy`, the (N, R, R,
3) uint8 resized squares of transforms.resized_square, memory-mapped, and `index.json`, which names that file and
lists each row's file path, size, mtime and ctime (ns) and whether it could not be decoded. A row is trusted only
while its file's path, size, mtime and ctime are unchanged: a changed, added or removed file makes a new cache in
which only the changed and added files are decoded (the rest is copied). The data file is written under a temp
name, flushed and renamed before index.json (replaced atomically) names it, so a run killed while building leaves
the previous cache or none, never half a file that a later run trusts. Builders take a lock on the folder.
"""
import fcntl
import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tripletloss.atomic import TMP_MARK, temp_path, write_atomic
from tripletloss.data.decode import BadImageError, read_image
from tripletloss.data.transforms import resized_square

INDEX, LOCK, FORMAT = "index.json", "lock", 1


def cache_folder(work_dir, preprocess):
    """The cache folder for images resized as `preprocess` says, under `work_dir`."""
    geometry = f"r{preprocess['resize']}-c{preprocess.get('crop_fraction', 1.0):g}"
    return Path(work_dir) / ".decode_cache" / geometry


def file_key(path):
    """[path, size, mtime_ns, ctime_ns] of the file at `path` (sizes and times -1 when it cannot be stat'ed)."""
    try:
        st = os.stat(path)
    except OSError:
        return [str(path), -1, -1, -1]
    return [str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def open_decode_cache(paths, preprocess, work_dir, num_workers=0, progress=True):
    """Return (images, bad) for the image files `paths`: images the (N, R, R, 3) uint8 read-only memory map of
    their resized squares (R = preprocess['resize']), bad the (N,) bool array of files that cannot be decoded
    (their rows are zeros). Decodes, with `num_workers` processes, only what the cache lacks."""
    folder = cache_folder(work_dir, preprocess)
    folder.mkdir(parents=True, exist_ok=True)
    keys = [file_key(p) for p in paths]
    with _locked(folder):
        _remove_temp_files(folder)
        index = _read_index(folder, preprocess["resize"])
        if index is None or [e[:4] for e in index["entries"]] != keys:
            index = _rebuild(folder, keys, index, preprocess, num_workers, progress)
        images = np.load(folder / index["data"], mmap_mode="r")
    return images, np.array([e[4] for e in index["entries"]], bool)


@contextmanager
def _locked(folder):
    """Hold an exclusive lock on `folder` (one builder at a time; released when the process dies)."""
    with open(folder / LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _remove_temp_files(folder):
    """Remove what killed builders left (temp files); only called under the lock, when nobody is writing."""
    for path in folder.glob(f".*{TMP_MARK}*"):
        path.unlink(missing_ok=True)


def _read_index(folder, resize):
    """The index of the cache in `folder` if it and the data file it names are whole and fit, else None."""
    try:
        index = json.loads((folder / INDEX).read_text())
        shape = np.load(folder / index["data"], mmap_mode="r").shape
    except (OSError, ValueError, KeyError, TypeError):
        return None
    fits = index.get("format") == FORMAT and shape == (len(index["entries"]), resize, resize, 3)
    return index if fits else None


def _rebuild(folder, keys, old, preprocess, num_workers, progress):
    """Write a new cache for `keys` in `folder`, reusing the unchanged rows of index `old`; return its index."""
    name, resize = f"images-{uuid.uuid4().hex}.npy", preprocess["resize"]
    tmp = temp_path(folder / name)
    try:
        data = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(keys), resize, resize, 3))
        bad = _fill(data, keys, folder, old, preprocess, num_workers, progress)
        data.flush()
        del data
        _fsync(tmp)
        os.replace(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    index = {"format": FORMAT, "data": name, "entries": [key + [b] for key, b in zip(keys, bad)]}
    write_atomic(folder / INDEX, json.dumps(index), durable=True)
    for path in folder.glob("images-*.npy"):
        if path.name != name:
            path.unlink()  # a process still reading an old cache keeps its memory map
    return index


def _fill(data, keys, folder, old, preprocess, num_workers, progress):
    """Fill `data`'s rows: copied from the old cache where the file is unchanged, else decoded. Returns the rows'
    bad flags (list of bool)."""
    reuse = {tuple(e[:4]): (row, e[4]) for row, e in enumerate(old["entries"])} if old else {}
    old_images = np.load(folder / old["data"], mmap_mode="r") if old else None
    bad = [False] * len(keys)
    todo = []
    for i, key in enumerate(keys):
        row, bad[i] = reuse.get(tuple(key), (None, False))
        if row is None:
            todo.append(i)
        else:
            data[i] = old_images[row]
    # A private generator: building the cache must not consume the global torch RNG (a cold and a warm cache
    # give the same run).
    decoded = DataLoader(_Decoder([keys[i][0] for i in todo], preprocess), batch_size=None, num_workers=num_workers,
                         generator=torch.Generator())
    for i, image in zip(todo, tqdm(decoded, desc="decoding images once", total=len(todo),
                                   disable=not progress or not todo, dynamic_ncols=True)):
        bad[i] = image is None
        if not bad[i]:
            data[i] = image
    return bad


class _Decoder(Dataset):
    """Decodes and resizes image files for the cache: item i is a uint8 array, or None if it cannot be decoded."""

    def __init__(self, paths, preprocess):
        self.paths, self.preprocess = paths, preprocess

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            return resized_square(read_image(self.paths[i]), self.preprocess)
        except BadImageError:
            return None


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())

"""Writing embeddings for other tools: FILE.npy plus FILE.labels.csv beside it, optionally OpenFace's reps.csv
layout as FILE.reps.csv (named after FILE, so two exports in one folder never mix)."""
import csv
from pathlib import Path

import numpy as np

FORMATS = ("npy", "csv", "openface")


def write_embeddings(emb, paths, identities, out, fmt="npy"):
    """Write embeddings `emb` (N, D) of images `paths` with names `identities`; return the written Paths.

    Always writes `out` (a .npy array, float32, row n = paths[n]) and `<stem>.labels.csv` beside it (header
    `path,identity`, same row order). fmt "csv" also writes `<stem>.reps.csv`: OpenFace's reps.csv layout, one
    row of comma-separated floats per image, no header. fmt "openface" writes `reps.csv` and `labels.csv` (the
    names OpenFace's classifier.py reads) as OpenFace's batch-represent does: labels.csv rows `label,path`
    without header, label the 1-based number of the identity in order of first appearance (OpenFace's
    classifier.py reads the identity from the path).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    emb = np.asarray(emb, dtype=np.float32)
    with open(out, "wb") as f:                                    # np.save(path) would append ".npy"
        np.save(f, emb)
    labels = beside(out, "labels.csv", fmt)
    with open(labels, "w", newline="") as f:
        csv.writer(f).writerows(label_rows(paths, identities, fmt))
    written = [out, labels]
    if fmt in ("csv", "openface"):
        reps = beside(out, "reps.csv", fmt)
        np.savetxt(reps, emb, delimiter=",", fmt="%.8g")
        written.append(reps)
    return written


def beside(out, name, fmt):
    """The file `name` (labels.csv, reps.csv) that goes with embeddings `out`: `<stem>.<name>` (two exports in one
    folder never mix), or plain `name` for fmt "openface" (the names OpenFace's tools read)."""
    return out.parent / name if fmt == "openface" else out.with_name(f"{out.stem}.{name}")


def label_rows(paths, identities, fmt):
    """Return the rows of labels.csv: header `path,identity` then one row per image, or for fmt "openface"
    OpenFace's `label,path` rows (1-based identity numbers in order of first appearance, no header)."""
    if fmt != "openface":
        return [("path", "identity")] + list(zip(map(str, paths), identities))
    numbers = {}
    return [(numbers.setdefault(name, len(numbers) + 1), str(path)) for path, name in zip(paths, identities)]

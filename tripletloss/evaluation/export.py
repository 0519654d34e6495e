"""Writing embeddings for other tools: FILE.npy plus FILE.labels.csv beside it, optionally OpenFace's reps.csv
layout as FILE.reps.csv (named after FILE, so two exports in one folder never mix)."""
import csv
from pathlib import Path

import numpy as np

FORMATS = ("npy", "csv")


def write_embeddings(emb, paths, identities, out, fmt="npy"):
    """Write embeddings `emb` (N, D) of images `paths` with names `identities`; return the written Paths.

    Always writes `out` (a .npy array, float32, row n = paths[n]) and `<stem>.labels.csv` beside it (header
    `path,identity`, same row order). fmt "csv" also writes `<stem>.reps.csv`: OpenFace's reps.csv layout, one
    row of comma-separated floats per image, no header.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    emb = np.asarray(emb, dtype=np.float32)
    with open(out, "wb") as f:                                    # np.save(path) would append ".npy"
        np.save(f, emb)
    labels = out.with_name(f"{out.stem}.labels.csv")
    with open(labels, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "identity"])
        writer.writerows(zip(map(str, paths), identities))
    written = [out, labels]
    if fmt == "csv":
        reps = out.with_name(f"{out.stem}.reps.csv")
        np.savetxt(reps, emb, delimiter=",", fmt="%.8g")
        written.append(reps)
    return written


"""Reading a run's metrics.csv as tripletloss.engine.metrics_log writes it (one row per logged scalar)."""
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from tripletloss.engine.metrics_log import FILE_NAME, HEADER
from tripletloss.errors import UserError


def read_metrics(run_dir):
    """Return {key: {stage: (steps, values)}} from RUN_DIR/metrics.csv, float arrays sorted by step.

    UserError (one line naming the file) when it is missing, has another header, or holds a bad number.
    """
    path = Path(run_dir) / FILE_NAME
    if not path.is_file():
        raise UserError(f"{path} not found (the trainer writes it into the run directory)")
    try:
        return _series(path)
    except (UnicodeDecodeError, csv.Error):
        raise UserError(f"{path}: not a text file (metrics.csv is CSV text)") from None


def _series(path):
    """read_metrics' body for the metrics.csv at `path`."""
    rows = defaultdict(list)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != HEADER:
            raise UserError(f"{path}: header must be {','.join(HEADER)}")
        for line, row in enumerate(reader, start=2):
            try:
                rows[row["key"], row["stage"]].append((float(row["step"]), float(row["value"])))
            except (TypeError, ValueError):
                raise UserError(f"{path} line {line}: step and value must be numbers") from None
    series = defaultdict(dict)
    for (key, stage), points in rows.items():
        steps, values = np.array(sorted(points)).T
        series[key][stage] = (steps, values)
    return dict(series)

"""Scalar logging to TensorBoard and to RUN_DIR/metrics.csv (columns stage, epoch, step, key, value)."""
import csv
from pathlib import Path


class MetricsLog:
    """Appends scalars to metrics.csv and a TensorBoard event file in `run_dir` (disabled when not `enabled`)."""

    def __init__(self, run_dir, stage, enabled=True):
        self.stage, self.enabled = stage, enabled
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter
            path = Path(run_dir) / "metrics.csv"
            new = not path.exists()
            self._file = open(path, "a", newline="")
            self._csv = csv.writer(self._file)
            if new:
                self._csv.writerow(["stage", "epoch", "step", "key", "value"])
            self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def log(self, scalars, step, epoch):
        """Record each {key: float} of `scalars` at global `step` (and `epoch`)."""
        if not self.enabled:
            return
        for key, value in scalars.items():
            self._csv.writerow([self.stage, epoch, step, key, f"{float(value):.6g}"])
            self.writer.add_scalar(key, float(value), step)
        self._file.flush()

    def close(self):
        """Flush and close the files."""
        if self.enabled:
            self.writer.close()
            self._file.close()

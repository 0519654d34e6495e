"""Scalar logging to TensorBoard and to RUN_DIR/metrics.csv (columns stage, epoch, step, key, value)."""
import csv
import io
from pathlib import Path

from tripletloss.atomic import write_atomic

#: The file in a run directory and its columns (read back by tripletloss.evaluation.runlog).
FILE_NAME = "metrics.csv"
HEADER = ("stage", "epoch", "step", "key", "value")


class MetricsLog:
    """Appends scalars to metrics.csv and a TensorBoard event file in `run_dir` (disabled when not `enabled`)."""

    def __init__(self, run_dir, stage, enabled=True):
        self.stage, self.enabled = stage, enabled
        self.path = Path(run_dir) / FILE_NAME
        if enabled:
            self._open()

    def _open(self, purge_step=None):
        from torch.utils.tensorboard import SummaryWriter

        new = not self.path.exists()
        self._file = open(self.path, "a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(HEADER)
        self.writer = SummaryWriter(str(self.path.parent / "tensorboard"), purge_step=purge_step)

    def log(self, scalars, step, epoch):
        """Record each {key: float} of `scalars` at global `step` (and `epoch`)."""
        if not self.enabled:
            return
        for key, value in scalars.items():
            self._csv.writerow([self.stage, epoch, step, key, f"{float(value):.6g}"])
            self.writer.add_scalar(key, float(value), step)
        self._file.flush()

    def resume_at(self, epoch, step):
        """Forget what this stage logged after a checkpoint taken at `epoch`, `step`, which is about to be logged
        again: metrics.csv loses its training rows after `step` and validation rows after `epoch` (they are
        logged with the epoch they complete), TensorBoard hides events after `step`."""
        if not self.enabled:
            return
        self.close()
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))[1:]
        out = io.StringIO()
        csv.writer(out).writerows([HEADER] + [row for row in rows if not self._after(row, epoch, step)])
        write_atomic(self.path, out.getvalue())
        self._open(purge_step=step + 1)

    def _after(self, row, epoch, step):
        """True for a row of this stage logged after (epoch, step), and for a torn row (a kill while writing)."""
        try:
            stage, row_epoch, row_step, key, _ = row[0], int(row[1]), int(row[2]), row[3], float(row[4])
        except (IndexError, ValueError):
            return True
        if stage != self.stage:
            return False
        return row_epoch > epoch if key.startswith("val/") else row_step > step

    def close(self):
        """Flush and close the files."""
        if self.enabled:
            self.writer.close()
            self._file.close()

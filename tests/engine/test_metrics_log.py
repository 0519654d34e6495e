"""MetricsLog: metrics.csv and TensorBoard scalars, and forgetting what was logged after a resumed checkpoint."""
import csv

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tripletloss.engine.metrics_log import MetricsLog


def _log_epochs(log, epochs, steps_per_epoch, offset=0.0):
    """Train loss every step and val accuracy at each epoch end (logged with the epoch it completes)."""
    for epoch in epochs:
        for step in range(epoch * steps_per_epoch + 1, (epoch + 1) * steps_per_epoch + 1):
            log.log({"train/loss": step + offset}, step, epoch)
        log.log({"val/accuracy": epoch + offset}, (epoch + 1) * steps_per_epoch, epoch + 1)


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return [tuple(row) for row in csv.reader(f)][1:]


def test_resume_at_drops_rows_after_the_checkpoint_and_tensorboard_hides_them(tmp_path):
    log = MetricsLog(tmp_path, "softmax")
    _log_epochs(log, [0, 1], steps_per_epoch=3)  # 6 steps; then "killed", last checkpoint at the end of epoch 1
    log.close()

    resumed = MetricsLog(tmp_path, "softmax")
    resumed.resume_at(epoch=1, step=3)
    _log_epochs(resumed, [1], steps_per_epoch=3, offset=0.5)  # the replayed epoch logs again (other values)
    resumed.close()

    rows = _rows(tmp_path)
    assert [(r[2], r[3]) for r in rows] == [("1", "train/loss"), ("2", "train/loss"), ("3", "train/loss"),
                                            ("3", "val/accuracy"), ("4", "train/loss"), ("5", "train/loss"),
                                            ("6", "train/loss"), ("6", "val/accuracy")]
    assert [r[4] for r in rows[4:]] == ["4.5", "5.5", "6.5", "1.5"]  # the replay's rows, not the first run's

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3, 4, 5, 6]
    assert [e.value for e in loss][3:] == [4.5, 5.5, 6.5]


def test_resume_keeps_rows_of_other_stages_and_a_mid_epoch_position(tmp_path):
    other = MetricsLog(tmp_path, "triplet")
    other.log({"train/loss": 9.0}, 50, 7)
    other.close()
    log = MetricsLog(tmp_path, "softmax")
    _log_epochs(log, [0], steps_per_epoch=4)
    log.resume_at(epoch=0, step=2)  # a mid-epoch checkpoint: epoch 0 not finished, its validation row goes
    log.close()
    assert [(r[0], r[2], r[3]) for r in _rows(tmp_path)] == [("triplet", "50", "train/loss"),
                                                              ("softmax", "1", "train/loss"),
                                                              ("softmax", "2", "train/loss")]


def test_resume_drops_a_row_torn_by_a_kill(tmp_path):
    log = MetricsLog(tmp_path, "softmax")
    _log_epochs(log, [0], steps_per_epoch=2)
    log.close()
    with open(tmp_path / "metrics.csv", "a") as f:
        f.write("softmax,0,3,train/lo")  # killed while writing a row
    resumed = MetricsLog(tmp_path, "softmax")
    resumed.resume_at(epoch=1, step=2)
    resumed.log({"train/loss": 3.0}, 3, 1)
    resumed.close()
    assert [(r[2], r[3], r[4]) for r in _rows(tmp_path)] == [("1", "train/loss", "1"), ("2", "train/loss", "2"),
                                                              ("2", "val/accuracy", "0"), ("3", "train/loss", "3")]

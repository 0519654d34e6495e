"""ROC and training-curve PNGs, and reading metrics.csv."""
import cv2
import numpy as np
import pytest

from tests.helpers.evaluation import assert_png_drawn
from tripletloss.cli import main
from tripletloss.errors import UserError
from tripletloss.evaluation.plots import identity_colours, plot_run, run_series, running_mean, save_curve, save_roc
from tripletloss.evaluation.runlog import read_metrics


def write_metrics(run_dir, with_val=False):
    """Write a metrics.csv with two stages of noisy loss and a learning rate (and val/accuracy if asked)."""
    rng = np.random.default_rng(0)
    lines = ["stage,epoch,step,key,value"]
    for stage, start in (("softmax", 3.0), ("triplet", 0.5)):
        for step in range(60):
            lines.append(f"{stage},{step // 20},{step},train/loss,{start * np.exp(-step / 30) + rng.normal(0, .1)}")
            lines.append(f"{stage},{step // 20},{step},train/lr,{0.01 * 0.5 ** (step // 20)}")
        if with_val:
            lines += [f"{stage},{e},{20 * e + 19},val/accuracy,{0.6 + 0.1 * e}" for e in range(3)]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_read_metrics_groups_by_key_and_stage(tmp_path):
    write_metrics(tmp_path)
    series = read_metrics(tmp_path)
    assert sorted(series) == ["train/loss", "train/lr"]
    steps, values = series["train/lr"]["triplet"]
    assert steps.tolist() == list(range(60)) and values[0] == 0.01 and values[-1] == 0.0025


def test_read_metrics_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="metrics.csv not found"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.csv").write_text("step,loss\n1,2\n")
    with pytest.raises(UserError, match="header"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.csv").write_text("stage,epoch,step,key,value\nsoftmax,0,1,train/loss,nan?\n")
    with pytest.raises(UserError, match="line 2"):
        read_metrics(tmp_path)


def test_running_mean():
    assert running_mean(np.array([1.0, 2.0, 3.0, 6.0]), 2).tolist() == [1.5, 2.5, 4.5]
    assert running_mean(np.array([4.0]), 5).tolist() == [4.0]


def test_plot_run_writes_present_quantities_and_skips_absent(tmp_path):
    write_metrics(tmp_path)
    written, missing = plot_run(tmp_path, tmp_path / "plots")
    assert [p.name for p in written] == ["loss.png", "lr.png"] and missing == ["val/accuracy"]
    for path in written:
        assert_png_drawn(path)


def test_plot_loss_command(tmp_path, capsys):
    write_metrics(tmp_path, with_val=True)
    with pytest.raises(SystemExit) as exit_:
        main(["plot-loss", str(tmp_path)])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.count("wrote") == 3
    assert_png_drawn(tmp_path / "val_accuracy.png")


def test_roc_plot(tmp_path):
    rng = np.random.default_rng(0)
    issame = np.arange(200) % 2 == 0
    dist = np.where(issame, rng.uniform(0, 1.2, 200), rng.uniform(0.8, 2, 200))
    assert_png_drawn(save_roc(dist, issame, tmp_path / "sub" / "roc.png", operating_point=(1e-3, 0.4)))


def test_several_runs_one_line_each_and_short_runs_visible(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_metrics(tmp_path / name, with_val=True)
    series = run_series([tmp_path / "a", tmp_path / "b"])
    assert sorted(series["val/accuracy"]) == ["a/softmax", "a/triplet", "b/softmax", "b/triplet"]
    written, _ = plot_run([tmp_path / "a", tmp_path / "b"], tmp_path / "both")
    assert [p.name for p in written] == ["loss.png", "lr.png", "val_accuracy.png"]
    # One validation point per stage: without markers a one-point line draws nothing at all.
    one = {"softmax": (np.array([5.0]), np.array([0.7]))}
    path = save_curve(one, tmp_path / "one.png", "validation accuracy")
    assert_png_drawn(path)
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    centre = image[int(0.4 * h):int(0.6 * h), int(0.4 * w):int(0.6 * w)]   # the lone point; the legend is in a corner
    assert ((centre[..., 0] > 150) & (centre[..., 2] < 100)).sum() > 5     # matplotlib's first colour, #1f77b4


@pytest.mark.parametrize("n", [10, 20, 60])
def test_neighbouring_identities_get_distinct_frame_colours(n):
    colours = np.array(identity_colours(n))
    assert len({tuple(c) for c in colours}) == n
    assert np.linalg.norm(np.diff(colours, axis=0), axis=1).min() > 0.3   # evenly spaced turbo: ~0.05 at n=60

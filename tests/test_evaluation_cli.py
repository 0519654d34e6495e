"""The evaluation commands end to end, on checkpoints from a tiny real training run on ORL faces."""
import json
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from evaluation_helpers import assert_png_drawn
from tripletloss import ROOT
from tripletloss.cli import main
from tripletloss.evaluation.runlog import read_metrics
from tripletloss.evaluation.verification import JSON_KEYS
from tripletloss.prepare.pairs import make_pairs, write_pairs

SHARED = ROOT.parent / "shared" / "data"
IDENTITIES = 10                                   # the first ten ORL identities by name: s1, s10 .. s18

TINY_NET = """name: tiny_softmax
input: {channels: 3, size: 32}
layers:
  - {name: conv1, type: conv, num_output: 16, kernel_size: 3, stride: 2, pad: 1, bias: false}
  - {name: bn1, type: batchnorm}
  - {name: relu1, type: relu}
  - {name: conv2, type: conv, num_output: 32, kernel_size: 3, stride: 2, pad: 1, bias: false}
  - {name: bn2, type: batchnorm}
  - {name: relu2, type: relu}
  - {name: pool2, type: pool, pool: max, kernel_size: 2}
  - {name: fc8, type: fc, num_output: 64, bias: false}
  - {name: bn8, type: batchnorm}
  - {name: fc9, type: fc, num_output: $num_classes}
outputs: {logits: fc9, embedding: bn8}
"""


def start_training(work, name, orl, epochs, *settings):
    """Start train.py's softmax stage with the tiny 32-px net (work/tiny.yaml, on work/ids.txt) into work/NAME.

    Returns the running Popen; finish_training() waits for it.
    """
    cmd = [sys.executable, "train.py", "--stage", "softmax", "--data-dir", str(orl), "--work-dir", str(work / name),
           "--epochs", str(epochs), "--set", f"softmax_net={work / 'tiny.yaml'}", "--set", "image_size=32",
           "--set", "resize_size=36", "--set", "softmax_lr=0.1", "--set", "num_workers=0",
           "--set", f"train_identities={work / 'ids.txt'}", "--set", "device=cpu"]
    for s in settings:
        cmd += ["--set", s]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_training(proc):
    """Wait for a start_training() process; return the model.pt path it printed (fail with its stderr)."""
    out, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    return re.search(r"^model: (.+)$", out, re.M).group(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Checkpoints of the tiny net on ten ORL identities: trained 10 epochs (val pairs every 5) and untrained."""
    orl = SHARED / "orl_faces"
    if not orl.is_dir():
        pytest.skip(f"{orl} is absent (real face data lives in ../shared/data)")
    work = tmp_path_factory.mktemp("tiny")
    (work / "tiny.yaml").write_text(TINY_NET)
    names = sorted(p.name for p in orl.iterdir() if p.is_dir())[:IDENTITIES]
    (work / "ids.txt").write_text("\n".join(names) + "\n")
    pairs = work / "pairs.txt"
    write_pairs(pairs, make_pairs({n: 10 for n in names}, num_pairs=20, num_folds=5))
    runs = [start_training(work, "trained", orl, 10, f"lfw_dir={orl}", f"pairs={pairs}", "eval_every_epochs=5"),
            start_training(work, "untrained", orl, 0)]
    trained, untrained = (finish_training(p) for p in runs)
    return SimpleNamespace(orl=orl, pairs=pairs, trained=trained, untrained=untrained, work=work)


def run_cli(argv, capsys):
    """Run `python -m tripletloss ARGV` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_training_logged_validation_and_plot_loss_draws_it(tiny, capsys):
    run_dir = next((tiny.work / "trained").iterdir())
    series = read_metrics(run_dir)
    assert len(series["val/accuracy"]["softmax"][0]) == 2          # epochs 5 and 10
    code, out, _ = run_cli(["plot-loss", run_dir, "--out", tiny.work / "plots"], capsys)
    assert code == 0
    for name in ("loss.png", "lr.png", "val_accuracy.png"):
        assert_png_drawn(tiny.work / "plots" / name)


def subset_pairs(pairs, out, folds, n):
    """Write the first `n` matched and `n` mismatched pairs of the first `folds` folds of `pairs` to `out`."""
    lines = pairs.read_text().splitlines()
    per_fold = 2 * int(lines[0].split()[1])
    keep = [f"{folds}\t{n}"]
    for k in range(folds):
        start = 1 + k * per_fold
        keep += lines[start:start + n] + lines[start + per_fold // 2:start + per_fold // 2 + n]
    out.write_text("\n".join(keep) + "\n")
    return out


def test_evaluate_json_and_roc_on_celeba_validation_pairs(tiny, celeba_dir, tmp_path, capsys):
    # A 3-fold, 120-pair subset of splits/pairs_val.txt keeps this quick (bench/ runs the full file).
    pairs = subset_pairs(celeba_dir / "splits" / "pairs_val.txt", tmp_path / "pairs.txt", 3, 20)
    argv = ["evaluate", "--model", tiny.trained, "--data-dir", celeba_dir, "--pairs", pairs, "--device", "cpu"]
    code, out, _ = run_cli(argv + ["--json", "--plot", tmp_path / "roc.png"], capsys)
    assert code == 0
    result = json.loads(out)
    assert sorted(result) == sorted(JSON_KEYS)
    assert all(0.0 <= result[k] <= 1.0 for k in JSON_KEYS if k != "threshold")
    assert 0.0 < result["threshold"] < 4.0
    assert_png_drawn(tmp_path / "roc.png")
    code, table, _ = run_cli(argv + ["--flip", "--subtract-mean"], capsys)
    assert code == 0 and "120 pairs in 3 folds" in table and "VAL @ FAR=1e-3" in table


def test_evaluate_names_a_missing_image(tiny, tmp_path, capsys):
    pairs = tmp_path / "pairs.txt"
    lines = tiny.pairs.read_text().splitlines()
    name, i, j = lines[1].split("\t")
    lines[1] = f"{name}\t{i}\t99"
    pairs.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(["evaluate", "--model", tiny.trained, "--data-dir", tiny.orl, "--pairs", pairs], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "line 2" in err and name in err and "99" in err


def test_trained_model_clusters_purer_than_untrained(tiny, tmp_path, capsys):
    scores = {}
    for label, model in (("trained", tiny.trained), ("untrained", tiny.untrained)):
        out_dir = tmp_path / label
        code, out, _ = run_cli(["cluster", "--model", model, "--data-dir", tiny.orl, "--out", out_dir,
                                "--max-identities", IDENTITIES, "--max-images-per-identity", 6,
                                "--device", "cpu"], capsys)
        assert code == 0
        scores[label] = float(re.search(r"purity ([0-9.]+)", out).group(1))
        grids = sorted(out_dir.glob("cluster_*.png"))
        assert len(grids) == IDENTITIES
        for path in grids[:2] + [out_dir / "tsne.png"]:
            assert_png_drawn(path)
    assert scores["trained"] > scores["untrained"]


def test_embed_export_and_classifier(tiny, tmp_path, capsys):
    subset = tmp_path / "orl3"
    subset.mkdir()
    for name in ("s1", "s10", "s11"):
        (subset / name).symlink_to(tiny.orl / name)
    code, _, _ = run_cli(["embed", "--model", tiny.trained, "--data-dir", subset, "--out", tmp_path / "e.npy",
                          "--format", "csv", "--device", "cpu"], capsys)
    assert code == 0
    emb = np.load(tmp_path / "e.npy")
    assert emb.shape == (30, 64) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.loadtxt(tmp_path / "reps.csv", delimiter=","), emb, atol=1e-6)
    assert (tmp_path / "labels.csv").read_text().count("\n") == 31
    for method in ("svm", "knn"):
        clf = tmp_path / f"{method}.npz"
        code, _, _ = run_cli(["classify", "train", "--model", tiny.trained, "--data-dir", subset, "--out", clf,
                              "--method", method, "--device", "cpu"], capsys)
        assert code == 0
        images = [subset / "s10" / "3.pgm", subset / "s11" / "7.pgm"]
        code, out, _ = run_cli(["classify", "predict", "--classifier", clf, "--model", tiny.trained,
                                "--device", "cpu"] + images, capsys)
        rows = [line.split("\t") for line in out.splitlines()]
        assert code == 0 and [r[1] for r in rows] == ["s10", "s11"]
        assert all(0.0 < float(r[2]) <= 1.0 for r in rows)

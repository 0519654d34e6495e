"""The evaluation commands end to end, on checkpoints from a tiny real training run on ORL faces."""
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

import train
from tests.conftest import tiny_overrides
from tests.evaluation_helpers import assert_png_drawn
from tripletloss.cli import main
from tripletloss.engine.checkpoint import load_checkpoint, save_atomic
from tripletloss.evaluation.runlog import read_metrics
from tripletloss.evaluation.verification import JSON_KEYS
from tripletloss.prepare.pairs import make_pairs, write_pairs

IDENTITIES = 10                                   # the first ten ORL identities by name: s1, s10 .. s18
EPOCHS = 8

def train_tiny(work, name, orl, epochs, *settings):
    """Train the conftest tiny net's softmax stage on work/ids.txt of `orl` in-process; return its model.pt."""
    argv = ["--stage", "softmax", "--data-dir", str(orl), "--work-dir", str(work / name), "--epochs", str(epochs)]
    for item in tiny_overrides(work) + [f"train_identities={work / 'ids.txt'}", "device=cpu", *settings]:
        argv += ["--set", item]
    _, run_dir = train.train(train.parse_args(argv))
    return run_dir / "model.pt"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, orl_dir):
    """Checkpoints of the tiny net on ten ORL identities: trained (validation pairs every 4 epochs) and untrained."""
    orl = orl_dir
    work = tmp_path_factory.mktemp("tiny")
    names = sorted(p.name for p in orl.iterdir() if p.is_dir())[:IDENTITIES]
    (work / "ids.txt").write_text("\n".join(names) + "\n")
    pairs = work / "pairs.txt"
    write_pairs(pairs, make_pairs({n: 10 for n in names}, num_pairs=20, num_folds=5))
    trained = train_tiny(work, "trained", orl, EPOCHS, f"lfw_dir={orl}", f"pairs={pairs}", "eval_every_epochs=4",
                         "softmax_lr=0.1", "log_every_steps=5")
    untrained = train_tiny(work, "untrained", orl, 0)
    return SimpleNamespace(orl=orl, pairs=pairs, trained=trained, untrained=untrained, work=work)


def run_cli(argv, capsys):
    """Run `python -m tripletloss ARGV` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_training_logs_validation_that_evaluate_reproduces_and_plot_loss_draws(tiny, capsys):
    run_dir = tiny.trained.parent
    series = read_metrics(run_dir)
    assert len(series["val/accuracy"]["softmax"][0]) == EPOCHS // 4
    # The standalone command reproduces what the trainer's hook logged after the last epoch.
    code, out, _ = run_cli(["evaluate", "--model", tiny.trained, "--data-dir", tiny.orl, "--pairs", tiny.pairs,
                            "--json", "--device", "cpu"], capsys)
    assert code == 0
    assert json.loads(out)["accuracy"] == pytest.approx(series["val/accuracy"]["softmax"][1][-1], abs=1e-4)
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


def test_a_checkpoint_naming_its_alignment_says_so(tiny, tmp_path, capsys):
    ckpt = load_checkpoint(tiny.untrained)
    ckpt["preprocess"]["template"] = "dlib_chip_150"  # as import-dlib writes it
    save_atomic(ckpt, tmp_path / "chip.pt")
    argv = ["evaluate", "--data-dir", tiny.orl, "--pairs", tiny.pairs, "--json", "--model"]
    notes = [[line for line in run_cli(argv + [model], capsys)[2].splitlines() if line.startswith("note:")]
             for model in (tmp_path / "chip.pt", tiny.untrained)]
    assert notes == [[f"note: {tmp_path / 'chip.pt'} expects faces aligned by "
                      "`python -m tripletloss align --landmarks dlib_chip_150`"], []]


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
    assert emb.shape == (30, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.loadtxt(tmp_path / "e.reps.csv", delimiter=","), emb, atol=1e-6)
    assert (tmp_path / "e.labels.csv").read_text().count("\n") == 31
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

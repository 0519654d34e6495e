"""The evaluation commands end to end, on checkpoints from a tiny real training run on ORL faces."""
import csv
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

import train
from tests.helpers.tiny import tiny_overrides
from tests.helpers.evaluation import assert_png_drawn
from tripletloss.cli import main
from tripletloss.data.pairs import make_pairs, write_pairs
from tripletloss.engine.checkpoint import load_checkpoint, save_atomic
from tripletloss.evaluation.runlog import read_metrics
from tripletloss.evaluation.verification import JSON_KEYS

IDENTITIES = 10                                   # the first ten ORL identities by name: s1, s10 .. s18
EPOCHS = 8


def train_tiny(work, name, orl, epochs, *settings):
    """Train the tiny net's softmax stage (tests/helpers/tiny.py) on work/ids.txt of `orl` in-process; return its
    model.pt."""
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


def test_alignment_warning_and_aligned_input(tiny, tmp_path, capsys):
    ckpt = load_checkpoint(tiny.untrained)
    ckpt["preprocess"]["template"] = "dlib_chip_150"  # as import-dlib writes it: raw photos would be aligned
    save_atomic(ckpt, tmp_path / "chip.pt")
    argv = ["evaluate", "--data-dir", tiny.orl, "--pairs", tiny.pairs, "--json", "--device", "cpu", "--model"]
    (code, chip, chip_err), (_, plain, plain_err) = (run_cli(argv + [model] + extra, capsys) for model, extra in
                                                     ((tmp_path / "chip.pt", ["--aligned"]), (tiny.untrained, [])))
    assert code == 0 and chip == plain and "warning" not in chip_err
    assert plain_err.count(f"warning: {tiny.untrained} records no alignment template") == 1


def test_evaluate_names_a_missing_image(tiny, tmp_path, capsys):
    pairs = tmp_path / "pairs.txt"
    lines = tiny.pairs.read_text().splitlines()
    name, i, j = lines[1].split("\t")
    lines[1] = f"{name}\t{i}\t99"
    pairs.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(["evaluate", "--model", tiny.trained, "--data-dir", tiny.orl, "--pairs", pairs], capsys)
    assert code == 2
    error = err.splitlines()[-1]
    assert "line 2" in error and name in error and "99" in error and "--skip-missing" in error


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
        assert code == 0 and [r[1] for r in rows] == ["s10", "s11"]     # training images: at distance 0
        assert all(float(r[2]) == pytest.approx(0.0, abs=1e-5) and 0.5 < float(r[3]) <= 1.0 for r in rows)
        code, out, _ = run_cli(["classify", "predict", "--classifier", clf, "--model", tiny.trained, "--device",
                                "cpu", "--threshold", "0"] + images, capsys)
        assert [line.split("\t")[1] for line in out.splitlines()] == ["unknown", "unknown"]


def test_training_stores_a_calibration_that_compare_uses(tiny, capsys):
    calibration = load_checkpoint(tiny.trained)["calibration"]
    assert 0.0 < calibration["far_threshold"] <= calibration["threshold"] < 4.0
    images = [tiny.orl / "s1" / "1.pgm", tiny.orl / "s1" / "2.pgm", tiny.orl / "s10" / "1.pgm"]
    argv = ["compare", "--model", tiny.trained, "--device", "cpu"] + images
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and f"same person below {calibration['threshold']:.4f}" in out
    matrix = np.array([[float(v) for v in line.split()[1:4]] for line in out.splitlines()[2:5]])
    assert np.allclose(np.diag(matrix), 0.0, atol=1e-5) and np.allclose(matrix, matrix.T)
    verdicts = [line.split("\t") for line in out.splitlines()[5:]]
    assert [(v[0], v[1]) for v in verdicts] == [(str(a), str(b)) for a, b in
                                                ((images[0], images[1]), (images[0], images[2]),
                                                 (images[1], images[2]))]
    assert all((v[3] == "same") == (float(v[2]) < calibration["threshold"]) for v in verdicts)
    for threshold, verdict in (("0", "different"), ("4.1", "same")):
        out = run_cli(argv + ["--threshold", threshold], capsys)[1]
        assert [line.split("\t")[3] for line in out.splitlines()[5:]] == [verdict] * 3


def test_calibrate_in_place_keeps_the_original_and_out_leaves_it(tiny, tmp_path, capsys):
    model = tmp_path / "m.pt"
    model.write_bytes(tiny.untrained.read_bytes())
    argv = ["evaluate", "--model", model, "--data-dir", tiny.orl, "--pairs", tiny.pairs, "--device", "cpu",
            "--json", "--calibrate", "--far", "0.1"]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and (tmp_path / "m.pt.orig").read_bytes() == tiny.untrained.read_bytes()
    calibration = load_checkpoint(model)["calibration"]
    assert calibration["threshold"] == pytest.approx(json.loads(out)["threshold"]) and calibration["far_target"] == 0.1
    assert load_checkpoint(model)["model"].keys() == load_checkpoint(tiny.untrained)["model"].keys()
    run_cli(argv + ["--landmarks", "outerEyesAndNose", "--aligned"], capsys)  # again: .orig stays the original
    assert (tmp_path / "m.pt.orig").read_bytes() == tiny.untrained.read_bytes()
    assert load_checkpoint(model)["preprocess"]["align"]["template"] == "outerEyesAndNose"
    before = model.read_bytes()
    assert run_cli(argv + ["--out", tmp_path / "copy.pt"], capsys)[0] == 0 and model.read_bytes() == before
    assert load_checkpoint(tmp_path / "copy.pt")["calibration"]["pairs"] == calibration["pairs"]


def test_cluster_unlabelled_folder_writes_clusters_csv(tiny, tmp_path, capsys):
    flat = tmp_path / "album"
    flat.mkdir()
    for name in ("s1", "s10", "s11"):
        for i in range(1, 5):
            (flat / f"{name}_{i}.pgm").symlink_to(tiny.orl / name / f"{i}.pgm")
    for method in ("chinese-whispers", "dbscan"):
        out_dir = tmp_path / method
        code, out, _ = run_cli(["cluster", "--model", tiny.trained, "--unlabelled", flat, "--out", out_dir,
                                "--method", method, "--device", "cpu"], capsys)
        assert code == 0
        with open(out_dir / "clusters.csv") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["path", "cluster"] and sorted(r[0] for r in rows[1:]) == sorted(map(str, flat.iterdir()))
        clusters = {int(r[1]) for r in rows[1:]}
        assert clusters == set(range(len(clusters))) and f"in {len(clusters)} clusters" in out
        assert len(list(out_dir.glob("cluster_*.png"))) == len(clusters)
        assert_png_drawn(out_dir / "cluster_000.png")
    code, _, err = run_cli(["cluster", "--model", tiny.trained, "--unlabelled", flat, "--out", tmp_path / "k",
                            "--method", "kmeans"], capsys)
    assert code == 2 and "--method kmeans" in err


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_network_matches_torch_on_real_faces(tiny, tmp_path, capsys, fmt):
    import torch
    from tripletloss.data.decode import read_image
    from tripletloss.data.transforms import to_input
    from tripletloss.deploy import embedding_module
    out = tmp_path / f"m.{fmt}"
    assert run_cli(["export", "--model", tiny.trained, "--format", fmt, "--out", out], capsys)[0] == 0
    ckpt = load_checkpoint(tiny.trained)
    assert json.loads((tmp_path / f"m.{fmt}.json").read_text())["preprocess"] == ckpt["preprocess"]
    faces = torch.stack([to_input(read_image(p), ckpt["preprocess"]) for p in sorted((tiny.orl / "s1").iterdir())])
    with torch.no_grad():
        expected = embedding_module(ckpt, tiny.trained)[0](faces).numpy()
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        got = ort.InferenceSession(str(out)).run(None, {"image": faces.numpy()})[0]
    else:
        got = torch.jit.load(str(out))(faces).detach().numpy()
    assert got.shape == expected.shape == (10, 32) and np.abs(got - expected).max() < 1e-5

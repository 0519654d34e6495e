"""Hostile input to `python -m tripletloss` commands, one parametrised test per family (inference: embed,
evaluate, cluster, classify, plot-loss; preparation: check, align, split, prune). Each case ends with its exit
code and one line naming the file or option (a warning where going on is legitimate), and changes no input file.
"""
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import train
from tests.helpers.tiny import tiny_overrides
from tests.helpers.hostile import (
    assert_case,
    drop_spec_layers,
    jpeg_bomb,
    knn_arrays,
    nan_weights,
    npz_claiming,
    png_bomb,
    random_bytes,
    run_main,
    snapshot,
    svm_arrays,
    tampered_checkpoint,
    undecodable,
    write_npz,
)
from tripletloss.cli import main
from tripletloss.data.pairs import make_pairs, write_pairs
from tripletloss.prepare.split import split_dataset

IDENTITIES = ("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8")
DIM = 32  # the tiny net's embedding (bn8)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, orl_dir):
    """Inputs: ORL faces, a copy with bombs and an undecodable file, an untrained tiny model, pairs, a split."""
    root = tmp_path_factory.mktemp("hostile_commands")
    for name in IDENTITIES:
        shutil.copytree(orl_dir / name, root / "faces" / name)
    for name in IDENTITIES[:3]:  # embedded whole by two cases: kept small
        shutil.copytree(orl_dir / name, root / "bad_faces" / name)
    bad = [png_bomb(root / "bad_faces" / "s1" / "bomb.png"), jpeg_bomb(root / "bad_faces" / "s2" / "bomb.jpg"),
           undecodable(root / "bad_faces" / "s3" / "notes.jpg")]
    sets = tiny_overrides(root) + [f"data_dir={root / 'faces'}", "softmax_epochs=0", "device=cpu"]
    _, run_dir = train.train(train.parse_args(["--stage", "softmax", *sum((["--set", s] for s in sets), [])]))
    write_pairs(root / "pairs.txt", make_pairs({name: 10 for name in IDENTITIES}, num_pairs=5, num_folds=2))
    split_dataset(root / "faces", root / "split", val_ratio=0.5, num_pairs=5, num_folds=2)
    return SimpleNamespace(root=root, faces=root / "faces", bad_faces=root / "bad_faces", bad=bad,
                           model=run_dir / "model.pt", run_dir=run_dir, out=tmp_path_factory.mktemp("outputs"))


def _model(c, name, change):
    return tampered_checkpoint(c.model, c.root / name, change)


def _npz(c, name, **arrays):
    return write_npz(c.root / name, **arrays)


def _pairs(c, name, line):
    (c.root / name).write_text(f"1\t1\n{line}\ns1\t1\ts2\t1\n")
    return c.root / name


def _binary_run(c):
    (c.root / "binary_run").mkdir(exist_ok=True)
    random_bytes(c.root / "binary_run" / "metrics.csv")
    return c.root / "binary_run"


def _embed(c, model, data=None, out=None):
    return ["embed", "--model", model, "--data-dir", data or c.faces, "--out", out or c.out / "e.npy",
            "--device", "cpu"]


def _predict(c, classifier, *images):
    return ["classify", "predict", "--model", c.model, "--device", "cpu", "--threshold", "4",
            "--classifier", classifier,
            *(images or [c.faces / "s1" / "1.pgm"])]


INFERENCE = {
    "embed, NaN weights": lambda c: dict(argv=_embed(c, _model(c, "nan.pt", nan_weights)),
                                         says=["nan.pt", "non-finite weights"]),
    "evaluate, NaN weights": lambda c: dict(argv=["evaluate", "--model", _model(c, "nan.pt", nan_weights),
                                                  "--data-dir", c.faces, "--pairs", c.root / "pairs.txt"],
                                            says=["nan.pt", "non-finite weights"]),
    "embed, damaged stored net": lambda c: dict(argv=_embed(c, _model(c, "spec.pt", drop_spec_layers)),
                                                says=["spec.pt", "damaged checkpoint"]),
    "embed, random bytes model": lambda c: dict(argv=_embed(c, random_bytes(c.root / "random.pt")),
                                                says=["random.pt", "corrupt"]),
    "embed, empty model": lambda c: dict(argv=_embed(c, random_bytes(c.root / "empty.pt", 0)),
                                         says=["empty.pt", "0 bytes"]),
    "embed --out a folder": lambda c: dict(argv=_embed(c, c.model, out=c.out),
                                           says=["--out", "a folder"]),
    "embed --out inside the data": lambda c: dict(
        argv=_embed(c, c.model, out=c.faces / "e.npy"), says=["inside the input dataset"]),
    "embed, unknown device": lambda c: dict(argv=_embed(c, c.model) + ["--device", "potato"],
                                            says=["device 'potato'"]),
    "embed, bombs and an undecodable image": lambda c: dict(
        argv=_embed(c, c.model, data=c.bad_faces), code=0,
        says=["warning:", "pixel limit", str(c.bad[2]), "left out"]),
    "predict, a bomb": lambda c: dict(argv=_predict(c, _npz(c, "ok.npz", **svm_arrays(DIM)), c.bad[0],
                                                    c.faces / "s1" / "1.pgm"),
                                      code=1, says=["warning:", "pixel limit", "bomb.png\tno face", "1.pgm\t"]),
    "classifier without its arrays": lambda c: dict(
        argv=_predict(c, _npz(c, "keys.npz", method=np.array("svm"), classes=np.array(["a", "b"]))),
        says=["keys.npz", "not a classifier file"]),
    "classifier of a wrong shape": lambda c: dict(
        argv=_predict(c, _npz(c, "shape.npz", **dict(svm_arrays(DIM), coef=np.zeros(DIM)))),
        says=["shape.npz", "array 'coef'"]),
    "classifier with k 0": lambda c: dict(argv=_predict(c, _npz(c, "k0.npz", **knn_arrays(DIM, 0))),
                                          says=["k0.npz", "k 0 outside"]),
    "classifier with k 1e9": lambda c: dict(argv=_predict(c, _npz(c, "k9.npz", **knn_arrays(DIM, 10 ** 9))),
                                            says=["k9.npz", "k 1000000000 outside"]),
    "classifier with NaN": lambda c: dict(
        argv=_predict(c, _npz(c, "nan.npz", **dict(svm_arrays(DIM), coef=np.full((2, DIM), np.nan)))),
        says=["nan.npz", "NaN or inf values in coef"]),
    "classifier claiming 1.6 GB": lambda c: dict(argv=_predict(c, npz_claiming(c.root / "big.npz", DIM, 6_250_000)),
                                                 says=["big.npz", "GiB"]),
    "classify train --k 0": lambda c: dict(argv=["classify", "train", "--model", c.model, "--data-dir", c.faces,
                                                 "--out", c.out / "c.npz", "--k", "0"], says=["--k"]),
    "cluster --k 0": lambda c: dict(argv=["cluster", "--model", c.model, "--data-dir", c.faces, "--out", c.out,
                                          "--k", "0"], says=["--k", "must be >= 1"]),
    "cluster --max-identities -1": lambda c: dict(
        argv=["cluster", "--model", c.model, "--data-dir", c.faces, "--out", c.out, "--max-identities", "-1"],
        says=["--max-identities"]),
    "evaluate --plot a folder": lambda c: dict(argv=["evaluate", "--model", c.model, "--data-dir", c.faces,
                                                     "--pairs", c.root / "pairs.txt", "--plot", c.out],
                                               says=["--plot", "a folder"]),
    "evaluate, an undecodable image": lambda c: dict(
        argv=["evaluate", "--model", c.model, "--data-dir", c.bad_faces, "--pairs", _pairs(c, "bad.txt", "s3\t1\t11")],
        says=["notes.jpg", "no face found in one of its images"]),  # with a warning naming why
    "pairs reaching out with ..": lambda c: dict(
        argv=["evaluate", "--model", c.model, "--data-dir", c.faces / "s1", "--pairs", _pairs(c, "up.txt", "..\t1\t2")],
        says=["up.txt line 2", "'..'"]),
    "pairs with an absolute path": lambda c: dict(
        argv=["evaluate", "--model", c.model, "--data-dir", c.faces, "--pairs", _pairs(c, "abs.txt", "/etc\t1\t2")],
        says=["abs.txt line 2", "'/etc'"]),
    "plot-loss, binary metrics.csv": lambda c: dict(argv=["plot-loss", _binary_run(c)],
                                                    says=["metrics.csv", "not a text file"]),
    "plot-loss --out a file": lambda c: dict(argv=["plot-loss", c.run_dir, "--out", c.model],
                                             says=["--out", "an existing file"]),
}

PREPARE = {
    "check, bombs": lambda c: dict(argv=["check", c.bad_faces], code=1,
                                   says=["BAD", "bomb.png\theader claims 40000x40000", "bomb.jpg\theader claims"]),
    "align --size 0": lambda c: dict(argv=["align", c.faces, c.out / "a", "--size", "0"], says=["--size"]),
    "align --size 30000": lambda c: dict(argv=["align", c.faces, c.out / "a", "--size", "30000"],
                                         says=["--size", "16..2048"]),
    "align into its input": lambda c: dict(argv=["align", c.faces, c.faces / "aligned"],
                                           says=["inside the input dataset"]),
    "split over an existing split": lambda c: dict(argv=["split", c.faces, c.root / "split", "--mode", "lists"],
                                                   says=["already holds a split", "pairs.txt"]),
    "split into its input": lambda c: dict(argv=["split", c.faces, c.faces / "split"],
                                           says=["inside the input dataset"]),
    "split --pairs 0": lambda c: dict(argv=["split", c.faces, c.out / "s", "--pairs", "0"], says=["--pairs"]),
    "split, a name with a line break": lambda c: dict(argv=["split", _newline_faces(c), c.out / "s"],
                                                      says=["not a plain folder name"]),
    "prune --min-images 0": lambda c: dict(argv=["prune", c.faces, "--min-images", "0"], says=["--min-images"]),
}


def _newline_faces(c):
    data = c.root / "newline_faces"
    if not data.exists():
        shutil.copytree(c.faces, data)
        shutil.copytree(c.faces / "s1", data / "bad\nname")
    return data


def _run_case(ctx, case, capsys):
    before = snapshot(ctx.root)
    code, out, err = run_main(main, case["argv"], capsys)
    assert_case(case, code, out, err, before, snapshot(ctx.root))


@pytest.mark.parametrize("name", INFERENCE)
def test_hostile_inference_input(ctx, name, capsys):
    _run_case(ctx, INFERENCE[name](ctx), capsys)


@pytest.mark.parametrize("name", PREPARE)
def test_hostile_preparation_input(ctx, name, capsys):
    _run_case(ctx, PREPARE[name](ctx), capsys)


def test_an_unlistable_identity_folder_is_one_line(ctx, monkeypatch, capsys):
    iterdir = Path.iterdir

    def refuse_s2(path):
        if path.name == "s2":
            raise PermissionError(13, "Permission denied", str(path))
        return iterdir(path)
    monkeypatch.setattr(Path, "iterdir", refuse_s2)
    case = {"argv": _embed(ctx, ctx.model), "says": [str(ctx.faces / "s2"), "Permission denied"]}
    _run_case(ctx, case, capsys)


def test_embed_labels_are_named_after_their_output(ctx, tmp_path, capsys):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "s4").symlink_to(ctx.faces / "s4")
    outputs = {}
    for name, data in (("A", tmp_path / "one"), ("B", ctx.bad_faces)):
        code, _, _ = run_main(main, _embed(ctx, ctx.model, data=data, out=ctx.out / f"{name}.npy"), capsys)
        assert code == 0
        outputs[name] = (np.load(ctx.out / f"{name}.npy"), (ctx.out / f"{name}.labels.csv").read_text().splitlines())
    for name, data, faces in (("A", tmp_path / "one", 10), ("B", ctx.bad_faces, 30)):
        emb, labels = outputs[name]
        assert len(labels) == len(emb) + 1 == faces + 1    # a header, then the decodable faces (bad ones left out)
        assert all(line.startswith(str(data)) for line in labels[1:])

"""Hostile input to train.py, one parametrised case each: every case ends with exit code 2 and one stderr line
naming the setting or file, before anything is written (no input file changes, no run directory appears)."""
import shutil
from types import SimpleNamespace

import pytest
import torch

import train
from tests.helpers.tiny import tiny_overrides
from tests.helpers.hostile import (
    assert_case,
    drop_preprocess_size,
    nan_weights,
    random_bytes,
    run_main,
    snapshot,
    tampered_checkpoint,
)
from tripletloss.engine.checkpoint import latest_checkpoint

IDENTITIES = ("s1", "s2", "s3", "s4")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, orl_dir):
    """A tiny finished softmax run (1 epoch) on four ORL identities: its folder, settings, model and checkpoint."""
    root = tmp_path_factory.mktemp("hostile_train")
    for name in IDENTITIES:
        shutil.copytree(orl_dir / name, root / "faces" / name)
    overrides = tiny_overrides(root) + [f"data_dir={root / 'faces'}", "softmax_epochs=1", "device=cpu"]
    _, run_dir = train.train(train.parse_args(["--stage", "softmax", *sum((["--set", o] for o in overrides), [])]))
    return SimpleNamespace(root=root, overrides=overrides, model=run_dir / "model.pt",
                           step=latest_checkpoint(run_dir))


def _yaml(ctx, name, text):
    """Write a layer list beside the tiny backbone; return the setting that selects it as the softmax net."""
    (ctx.root / "nets" / name).write_text(text)
    return f"softmax_net={ctx.root / 'nets' / name}"


def _one_identity(ctx):
    (ctx.root / "one.txt").write_text("s1\n")
    return [f"train_identities={ctx.root / 'one.txt'}"]


def _resume_nan(ctx):
    folder = ctx.root / "nan_run"
    folder.mkdir(exist_ok=True)
    return ["--resume", tampered_checkpoint(ctx.step, folder / "step-2.pt", nan_weights)]


CASES = {
    "seed beyond 2^32-1": lambda c: dict(sets=["seed=4294967296"], says=["seed must be <= 4294967295"]),
    "unknown device": lambda c: dict(sets=["device=potato"], says=["device 'potato'"]),
    "learning rate beyond float32": lambda c: dict(sets=["softmax_lr=1e308"], says=["softmax_lr must be <="]),
    "batch larger than the data": lambda c: dict(sets=["softmax_batch_size=5000"], says=["softmax_batch_size"]),
    "fewer identities than P": lambda c: dict(stage="triplet", sets=["identities_per_batch=50"],
                                              args=["--finetune", c.model], says=["identities_per_batch"]),
    "work dir under a file": lambda c: dict(sets=[f"work_dir={c.model}/runs"], says=["Not a directory"]),
    "one identity": lambda c: dict(sets=_one_identity(c), says=["at least 2 identities"]),
    "include cycle": lambda c: dict(sets=[_yaml(c, "cycle.yaml", "include: [cycle.yaml]\n")], says=["cycle"]),
    "layer name not a string": lambda c: dict(sets=[_yaml(c, "name.yaml", "include: [tiny_backbone.yaml]\n"
                                                          "layers:\n  - {name: 9, type: relu}\n")],
                                              says=["'name'"]),
    "include without file": lambda c: dict(sets=[_yaml(c, "nofile.yaml", "include: [{lr_mult: 0}]\n")],
                                           says=["needs a 'file: NAME'"]),
    "no logits output": lambda c: dict(sets=[_yaml(c, "nologits.yaml", "include: [tiny_backbone.yaml]\n"
                                                   "outputs: {embedding: bn8}\n")], says=["'logits'"]),
    "size as a string": lambda c: dict(sets=[_yaml(c, "size.yaml", "input: {channels: 3, size: '32'}\n"
                                                   "layers:\n  - {name: fc9, type: fc, num_output: 4}\n")],
                                       says=["size.yaml", "input size"]),
    "num_output not a number": lambda c: dict(sets=[_yaml(c, "eight.yaml", "include: [tiny_backbone.yaml]\n"
                                                          "layers:\n  - {name: fc9, type: fc, num_output: eight}\n"
                                                          "outputs: {logits: fc9}\n")],
                                              says=["num_output must be a whole number"]),
    "config calls sys.exit": lambda c: dict(args=["--config", _text(c, "exit.py", "import sys\nsys.exit(0)\n")],
                                            says=["exit.py", "sys.exit(0)"]),
    "random bytes as a checkpoint": lambda c: dict(args=["--finetune", random_bytes(c.root / "random.pt")],
                                                   says=["random.pt", "corrupt"]),
    "empty checkpoint": lambda c: dict(args=["--finetune", _text(c, "empty.pt", "")], says=["empty.pt", "0 bytes"]),
    "NaN weights to fine-tune from": lambda c: dict(
        args=["--finetune", tampered_checkpoint(c.model, c.root / "nan.pt", nan_weights)],
        says=["nan.pt", "non-finite weights"]),
    "NaN weights to resume": lambda c: dict(args=_resume_nan(c), says=["step-2.pt", "non-finite weights"]),
    "preprocess without size": lambda c: dict(
        args=["--finetune", tampered_checkpoint(c.model, c.root / "nosize.pt", drop_preprocess_size)],
        says=["nosize.pt", "preprocess 'size' is missing"]),
}


def _text(ctx, name, text):
    (ctx.root / name).write_text(text)
    return ctx.root / name


@pytest.mark.parametrize("name", CASES)
def test_hostile_training_input_is_one_line_and_writes_nothing(ctx, name, capsys):
    case = CASES[name](ctx)
    argv = ["--stage", case.get("stage", "softmax"), *case.get("args", [])]
    argv += sum((["--set", item] for item in ctx.overrides + case.get("sets", [])), [])
    before = snapshot(ctx.root)
    code, out, err = run_main(train.main, argv, capsys)
    assert_case(case, code, out, err, before, snapshot(ctx.root))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_device_without_cuda_is_one_line(ctx, capsys):
    argv = ["--stage", "softmax", *sum((["--set", item] for item in ctx.overrides + ["device=cuda"]), [])]
    before = snapshot(ctx.root)
    code, out, err = run_main(train.main, argv, capsys)
    assert_case({"says": ["device 'cuda'", "0 CUDA device"]}, code, out, err, before, snapshot(ctx.root))

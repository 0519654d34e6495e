"""Checkpoint files: what they hold, atomic writes, retention, safe loading (weights_only) and checkpoints that do
not fit the network at hand (one-line errors naming layers and shapes, exit code 2).
"""
import pickle
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.tiny import TINY_SOFTMAX_DROPOUT
from tests.helpers.reliability import (
    load,
    run,
    run_dirs,
    step_files,
    subset_overrides,
    train_cmd,
)
from tripletloss.data.transforms import make_preprocess
from tripletloss.engine import rng
from tripletloss.engine.checkpoint import FORMAT, load_checkpoint, save_atomic
from tripletloss.engine.run_dir import LOCK_NAME
from tripletloss.net import build_net
from tripletloss.settings_schema import SCHEMA


@pytest.fixture(scope="module")
def finished(tmp_path_factory, orl_dir):
    """A finished 1-epoch softmax run (5 steps) checkpointing every 2 steps, keeping 2: (overrides, run dir)."""
    orl = orl_dir
    root = tmp_path_factory.mktemp("ckpt")
    overrides = subset_overrides(root, orl, extra=["softmax_epochs=1", "checkpoint_every_steps=2",
                                                 "keep_checkpoints=2"])
    result = run(train_cmd("softmax", overrides))
    assert result.returncode == 0, result.stderr[-2000:]
    return overrides, run_dirs(root / "runs", "softmax")[-1]


def _one_line_error(result):
    """Assert `result` is a user error (exit 2, one stderr line, no traceback); return that line."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and "%|" not in line]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


def test_checkpoint_holds_everything_a_resume_needs(finished):
    _, run_dir = finished
    assert step_files(run_dir) == {"step-4.pt", "step-5.pt"}      # written at 2, 4 and 5 (epoch end); 2 kept
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".") and p.name != LOCK_NAME], \
        "temporary files left behind"
    ckpt = load_checkpoint(run_dir / "step-5.pt")
    final = load(run_dir / "model.pt")["model"]
    assert all(torch.equal(ckpt["model"][k], final[k]) for k in final)
    assert {"bn8.running_mean", "bn8.running_var", "bn8.num_batches_tracked"} <= set(ckpt["model"])
    assert ckpt["state"]["epoch"] == 1 and ckpt["state"]["batch"] == 0 and ckpt["state"]["step"] == 5
    net = build_net(ckpt["net"]["file"], ckpt["variables"])
    momentum = [s["momentum_buffer"] for s in ckpt["optimizer"]["state"].values()]
    assert len(momentum) == len(list(net.parameters()))          # SGD momentum of every parameter
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch"}
    rng.restore(ckpt["rng"])                                      # the saved states really restore
    assert torch.equal(torch.get_rng_state(), ckpt["rng"]["torch"])
    saved_yaml = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert ckpt["config"] == saved_yaml and set(saved_yaml) == set(SCHEMA)
    assert load(run_dir / "step-4.pt")["state"]["step"] == 4 and load(run_dir / "step-4.pt")["state"]["batch"] == 4


def test_failed_write_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "step-1.pt"
    save_atomic({"format": FORMAT, "x": torch.ones(3)}, path)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_atomic({"format": FORMAT, "x": lambda: 0}, path)    # fails half-way through torch.save
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["step-1.pt"]


class _Payload:
    """Unpickling this runs open(marker, 'w'): proof that a checkpoint executed code if the marker appears."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_checkpoint_with_pickled_code_is_refused(finished, tmp_path):
    overrides, run_dir = finished
    evil, marker = tmp_path / "step-9.pt", tmp_path / "pwned"
    ckpt = load(run_dir / "model.pt")
    torch.save(dict(ckpt, extra=_Payload(str(marker))), evil)
    error = _one_line_error(run(train_cmd("softmax", overrides, "--resume", evil)))
    assert error == (f"error: {evil}: refused: it holds a pickled Python object (io.open) that could run code, "
                     "and checkpoints are loaded with weights_only=True")
    assert not marker.exists()


def _variant_net(tmp_path, overrides, replace):
    """Write the tiny stage-1 net with text substitutions `replace` to its backbone; return the softmax YAML path."""
    nets = tmp_path / "nets"
    nets.mkdir(exist_ok=True)
    original = Path(next(o for o in overrides if o.startswith("softmax_net=")).split("=", 1)[1])
    text = original.with_name("tiny_backbone.yaml").read_text()
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    (nets / "tiny_backbone.yaml").write_text(text)
    (nets / "softmax.yaml").write_text(TINY_SOFTMAX_DROPOUT)
    return nets / "softmax.yaml"


def _foreign_checkpoint(tmp_path, overrides, replace):
    """Save a stage-1 model record of a variant of the tiny net (see _variant_net); return its path."""
    net = build_net(_variant_net(tmp_path, overrides, replace), {"num_classes": 8})
    path = tmp_path / "foreign.pt"
    preprocess = make_preprocess({"image_size": 32, "resize_size": 36, "crop_fraction": 1.0,
                                  "per_image_standardization": False})
    save_atomic({"format": FORMAT, "stage": "softmax", "model": net.layers.state_dict(), "preprocess": preprocess},
                path)
    return path


def test_resume_with_a_different_network_names_the_layers(finished, tmp_path):
    """--resume with softmax_net pointing at a YAML whose fc8 is 24 wide instead of 32."""
    overrides, run_dir = finished
    other = _variant_net(tmp_path, overrides, [("num_output: 32}", "num_output: 24}")])
    error = _one_line_error(run(train_cmd("softmax", overrides, "--resume", run_dir / "step-4.pt",
                                          "--set", f"softmax_net={other}")))
    assert "does not match this network's layers" in error
    assert "fc8.weight (32, 16) vs (24, 16)" in error and "bn8.running_mean (32,) vs (24,)" in error


def test_finetune_from_an_unrelated_architecture_is_an_error(finished, tmp_path):
    overrides, _ = finished
    foreign = _foreign_checkpoint(tmp_path, overrides, [("num_output: 8,", "num_output: 12,"),
                                                        ("num_output: 16,", "num_output: 20,"),
                                                        ("num_output: 32}", "num_output: 40}")])
    error = _one_line_error(run(train_cmd("softmax", overrides, "--finetune", foreign)))
    assert f"{foreign}: no layer fits this network" in error
    assert "conv1.weight: shape (12, 3, 3, 3) in" in error


def test_stage2_from_a_stage1_model_with_another_backbone_is_an_error(finished, tmp_path):
    """Stage 2 freezes the backbone: a backbone layer that cannot be restored would stay random for ever."""
    overrides, _ = finished
    foreign = _foreign_checkpoint(tmp_path, overrides, [("num_output: 32}", "num_output: 24}")])
    error = _one_line_error(run(train_cmd("triplet", overrides, "--finetune", foreign)))
    assert "frozen layers fc8, bn8 would stay random" in error
    assert "fc8.weight: shape (24, 16) in" in error and "(32, 16) here" in error

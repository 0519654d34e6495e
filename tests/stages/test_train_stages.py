"""Both stages end to end on real faces (tiny network): stage 2 trains only fc9_1 and lowers the triplet loss."""
import subprocess
import sys

import pytest
import torch

from tests.helpers.tiny import run_stage
from tripletloss import ROOT
from tripletloss.engine import rng
from tripletloss.engine.checkpoint import load_checkpoint
from tripletloss.inference import compute_outputs
from tripletloss.settings import load_settings
from tripletloss.stages.factory import build_stage
from tripletloss.stages.training_data import load_training_data


def all_triplets_loss(emb, labels, margin=0.2):
    """Mean hinge over every (a, p, n) triplet of the whole set: a fixed yardstick independent of mining."""
    d = torch.cdist(emb, emb).pow(2)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool)
    hinge = (d[:, :, None] - d[:, None, :] + margin).clamp_min(0)
    mask = pos[:, :, None] & ~same[:, None, :]
    return hinge[mask].mean().item()


@pytest.fixture(scope="module")
def two_stage_run(tmp_path_factory, orl_dir):
    orl = orl_dir
    tmp = tmp_path_factory.mktemp("stages")
    from tests.helpers.tiny import tiny_overrides
    overrides = tiny_overrides(tmp) + ["selection=batch_hard", "triplet_lr=0.1"]
    run_stage("softmax", orl, overrides, epochs=2)
    settings = load_settings(overrides=overrides + [f"data_dir={orl}"])
    data = load_training_data(settings)
    rng.seed_everything(settings["seed"])
    initial = build_stage("triplet", settings, data, torch.device("cpu"), progress=False).net
    state, run_dir = run_stage("triplet", orl, overrides, epochs=4)
    return settings, data, initial, run_dir


def test_stage2_changes_only_fc9_1(two_stage_run):
    settings, _, _, run_dir = two_stage_run
    stage1 = load_checkpoint(next((run_dir.parent).glob("softmax-*/model.pt")))["model"]
    stage2 = load_checkpoint(run_dir / "model.pt")["model"]
    backbone = [k for k in stage2 if not k.startswith("fc9_1.")]
    assert backbone and all(torch.equal(stage1[k], stage2[k]) for k in backbone)
    assert not torch.equal(stage2["fc9_1.weight"], two_stage_run[2].layers.state_dict()["fc9_1.weight"])


def test_stage2_lowers_triplet_loss_on_real_faces(two_stage_run):
    settings, (paths, labels, _), initial, run_dir = two_stage_run
    from tripletloss.inference import net_from_checkpoint
    ckpt = load_checkpoint(run_dir / "model.pt")
    final = net_from_checkpoint(ckpt, run_dir / "model.pt")
    labels = torch.tensor(labels)
    losses = [all_triplets_loss(compute_outputs(net, paths, ckpt["preprocess"], "embedding", torch.device("cpu"),
                                                num_workers=0, progress=False)[0], labels)
              for net in (initial, final)]
    assert losses[1] < 0.8 * losses[0], losses


def test_run_dir_holds_config_metrics_and_tensorboard(two_stage_run):
    run_dir = two_stage_run[3]
    assert (run_dir / "config.yaml").is_file() and any((run_dir / "tensorboard").iterdir())
    keys = {line.split(",")[3] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]}
    assert {"train/loss", "train/lr", "train/active", "train/d_ap", "train/d_an", "time/loader_wait",
            "time/compute"} <= keys


def test_synthetic_default_trains_without_data(tmp_path):
    from tests.helpers.tiny import tiny_overrides
    args = [sys.executable, "train.py", "--stage", "softmax", "--epochs", "1"]
    for item in tiny_overrides(tmp_path):
        args += ["--set", item]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SYNTHETIC" in proc.stdout + proc.stderr
    (run_dir,) = (tmp_path / "runs").glob("softmax-*")
    assert (run_dir / "model.pt").is_file()
    assert ",val/accuracy," in (run_dir / "metrics.csv").read_text()  # evaluated on unseen synthetic identities


def test_bad_yaml_is_one_line_error(tmp_path, orl_dir):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {channels: 3, size: 96}\nlayers:\n  - {name: c1, type: convolution}\n")
    proc = subprocess.run([sys.executable, "train.py", "--stage", "softmax", "--data-dir", str(orl_dir),
                           "--set", f"softmax_net={bad}", "--set", f"work_dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "layer 'c1'" in lines[0] and "unknown type" in lines[0]

"""The seeds' recipes run; exact resume with pinguo's sampler and weight averaging; training-health warnings."""
import csv

import pytest
import torch

import train
from tests.helpers.tiny import tiny_overrides
from tripletloss import ROOT
from tripletloss.engine.checkpoint import load_checkpoint
from tripletloss.engine.loop import TrainLoop
from tripletloss.engine.run_dir import create_run_dir
from tripletloss.settings import load_settings
from tripletloss.stages.factory import build_stage
from tripletloss.stages.restore import read_checkpoint
from tripletloss.stages.training_data import load_training_data

BACKBONE = ROOT / "models" / "tripletloss_celeba_small.pt"
#: What each recipe needs to fit ORL (40 identities of 10 images) in a few steps; the rest is the recipe's own.
FIT_ORL = ["identities_per_batch=4", "images_per_identity=4", "batches_per_epoch=2", "softmax_batch_size=16",
           "num_workers=0", "log_every_steps=1"]


def _run(args, sets):
    """train.train in-process with `args` plus `--set` items; returns (TrainState, run directory)."""
    return train.train(train.parse_args(list(map(str, args)) + [x for s in sets for x in ("--set", s)]))


def _identities(tmp_path, orl_dir, count):
    path = tmp_path / "identities.txt"
    path.write_text("\n".join(sorted(p.name for p in orl_dir.iterdir() if p.is_dir())[:count]) + "\n")
    return path


@pytest.mark.parametrize("recipe, stage", [("pinguo", "triplet"), ("facenet_triplet", "triplet"),
                                           ("facenet_softmax", "softmax"), ("openface", "triplet")])
def test_recipe_runs_a_few_steps_on_orl(tmp_path, orl_dir, recipe, stage):
    ids = _identities(tmp_path, orl_dir, 6)
    state, run_dir = _run(["--stage", stage, "--config", ROOT / "recipes" / f"{recipe}.py", "--finetune", BACKBONE,
                           "--data-dir", orl_dir, "--work-dir", tmp_path / "runs", "--epochs", 1],
                          FIT_ORL + [f"train_identities={ids}"])
    saved = load_checkpoint(run_dir / "model.pt")
    recipe_settings = load_settings(ROOT / "recipes" / f"{recipe}.py")
    for key in ("optimizer", "selection", "margin", "moving_average_decay"):
        assert load_checkpoint(next(run_dir.glob("step-*.pt")))["config"][key] == recipe_settings[key]
    assert state.step >= 2 and all(torch.isfinite(v).all() for v in saved["model"].values())


@pytest.fixture(scope="module")
def backbone(tmp_path_factory, orl_dir):
    """Overrides for tiny-net runs on 8 ORL identities, with a stage-1 model (0 epochs) in their work dir."""
    tmp = tmp_path_factory.mktemp("tiny")
    overrides = tiny_overrides(tmp) + [f"data_dir={orl_dir}", f"train_identities={_identities(tmp, orl_dir, 8)}",
                                       "deterministic=true"]
    _run(["--stage", "softmax", "--epochs", 0], overrides)
    return overrides


def test_resume_is_exact_with_pinguo_batches_and_weight_averaging(backbone):
    sets = backbone + ["selection=pinguo", "pinguo_triplets=3", "batches_per_epoch=4", "moving_average_decay=0.9",
                       "checkpoint_every_steps=1", "keep_checkpoints=20", "triplet_lr=0.5"]
    _, run_dir = _run(["--stage", "triplet", "--epochs", 2], sets)
    straight = load_checkpoint(run_dir / "step-8.pt")
    model = load_checkpoint(run_dir / "model.pt")
    _run(["--stage", "triplet", "--epochs", 2, "--resume", run_dir / "step-3.pt"], sets)
    resumed = load_checkpoint(run_dir / "step-8.pt")
    for key in ("model", "live_model"):
        assert all(torch.equal(straight[key][k], resumed[key][k]) for k in straight[key])
    assert torch.equal(load_checkpoint(run_dir / "model.pt")["model"]["fc9_1.weight"], model["model"]["fc9_1.weight"])
    assert torch.equal(model["model"]["fc9_1.weight"], straight["model"]["fc9_1.weight"])  # model.pt: the average
    assert not torch.equal(straight["model"]["fc9_1.weight"], straight["live_model"]["fc9_1.weight"])
    assert "live_model" not in model


def test_weight_averaging_changes_only_the_averaged_copy(backbone):
    sets = backbone + ["batches_per_epoch=3", "triplet_lr=0.5"]
    _, plain = _run(["--stage", "triplet", "--epochs", 1], sets)
    _, averaged = _run(["--stage", "triplet", "--epochs", 1], sets + ["moving_average_decay=0.99"])
    last = lambda run: load_checkpoint(run / "step-3.pt")  # noqa: E731
    assert all(torch.equal(v, last(averaged)["live_model"][k]) for k, v in last(plain)["model"].items())
    assert not torch.equal(last(plain)["model"]["fc9_1.weight"], last(averaged)["model"]["fc9_1.weight"])


def _health_run(tmp_path, orl_dir, collapse):
    """Stage 2 on the provided backbone and its trained fc9_1, 6 logged steps (violating selection) on 8 ORL
    identities; with `collapse`, fc9_1 is zeroed first: every embedding is the same point and stays there (zero
    gradient). Returns the metrics.csv rows."""
    settings = load_settings(overrides=[f"data_dir={orl_dir}", f"train_identities={_identities(tmp_path, orl_dir, 8)}",
                                        "selection=violating", "health_intervals=3", "batches_per_epoch=6",
                                        "identities_per_batch=4", "images_per_identity=4", "num_workers=0",
                                        "log_every_steps=1", f"work_dir={tmp_path}"])
    stage = build_stage("triplet", settings, load_training_data(settings), torch.device("cpu"),
                        init=read_checkpoint(BACKBONE), progress=False)
    if collapse:
        with torch.no_grad():
            for p in stage.net.layers["fc9_1"].parameters():
                p.zero_()
    run_dir = create_run_dir(settings["work_dir"], "triplet", settings)
    TrainLoop(stage, settings, run_dir, 1, settings["triplet_lr"], torch.device("cpu")).run()
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_collapse_warning_fires_once_on_a_collapsed_run(tmp_path, orl_dir, capsys):
    rows = _health_run(tmp_path, orl_dir, collapse=True)
    err = capsys.readouterr().err
    assert err.count("warning: embeddings have collapsed") == 1 and "triplet_lr" in err
    assert [(r["key"], r["step"]) for r in rows if r["key"].startswith("health/")] == [("health/collapse", "3")]


def test_health_warnings_stay_silent_on_a_healthy_run(tmp_path, orl_dir, capsys):
    rows = _health_run(tmp_path, orl_dir, collapse=False)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert [w for w in warnings if "was trained on faces aligned with" not in w] == []  # ORL is not aligned
    assert not [r for r in rows if r["key"].startswith("health/")]
    assert len([r for r in rows if r["key"] == "train/d_an"]) == 6

"""Phases are named after the layers they train, and checkpoints written before that naming (phases "head" and
"body", the stage's state under "job_state") still resume bit-exactly."""
import shutil

import pytest
import torch

from tests.helpers.tiny import run_stage, tiny_overrides
from tripletloss.engine.checkpoint import load_checkpoint, save_atomic, step_checkpoints
from tripletloss.settings import load_settings
from tripletloss.stages.factory import build_stage
from tripletloss.stages.restore import read_checkpoint
from tripletloss.stages.training_data import load_training_data

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, orl_dir):
    """A 2-epoch fine-tuning run of the tiny net (center loss on, a checkpoint every step: 5 steps an epoch) from a
    0-epoch run's model; returns (overrides, the model fine-tuned from, the run directory)."""
    tmp = tmp_path_factory.mktemp("phases")
    (tmp / "ids.txt").write_text("\n".join(f"s{i}" for i in range(1, 9)) + "\n")
    sets = tiny_overrides(tmp) + [f"data_dir={orl_dir}", f"train_identities={tmp / 'ids.txt'}", "deterministic=true",
                                  "finetune_freeze_epochs=1", "finetune_unfreeze_from=res2", "center_loss=0.1",
                                  "checkpoint_every_steps=1", "keep_checkpoints=100"]
    _, source = run_stage("softmax", orl_dir, sets, epochs=0)
    _, run_dir = run_stage("softmax", orl_dir, sets, epochs=2, extra=["--finetune", str(source / "model.pt")])
    return sets, source / "model.pt", run_dir


def test_phases_name_the_layers_that_train(finetuned):
    sets, source, run_dir = finetuned
    settings = load_settings(overrides=sets)
    data = load_training_data(settings)
    stage = build_stage("softmax", settings, data, CPU, init=read_checkpoint(source))
    assert [stage.phase(epoch) for epoch in (0, 1, 5)] == ["frozen_backbone", "from_res2", "from_res2"]
    stage.apply_phase("frozen_backbone")
    assert stage.net.frozen_layers() == ["conv1", "bn1", "res2", "fc8", "bn8"]
    stage.apply_phase("from_res2")
    assert stage.net.frozen_layers() == ["conv1", "bn1"]
    assert stage.phase_from_checkpoint("head") == "frozen_backbone"
    assert stage.phase_from_checkpoint("body") == "from_res2"
    scratch = build_stage("softmax", settings, data, CPU)
    assert scratch.phase(0) == scratch.phase_from_checkpoint("body") == "all"
    assert [load_checkpoint(path)["phase"] for path in step_checkpoints(run_dir)] == \
        ["frozen_backbone"] * 5 + ["from_res2"] * 5


@pytest.mark.parametrize("step, old_phase", [(3, "head"), (7, "body")])
def test_a_checkpoint_with_the_old_names_resumes_bit_exactly(finetuned, orl_dir, tmp_path, step, old_phase):
    sets, _, run_dir = finetuned
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    for path in [copy / "model.pt", *step_checkpoints(copy)[step:]]:
        path.unlink()
    ckpt = load_checkpoint(copy / f"step-{step}.pt")
    assert ckpt["stage_state"]["centers"].abs().sum() > 0
    ckpt["phase"], ckpt["job_state"] = old_phase, ckpt.pop("stage_state")
    save_atomic(ckpt, copy / f"step-{step}.pt")
    run_stage("softmax", orl_dir, sets, epochs=2, extra=["--resume", str(copy / f"step-{step}.pt")])
    resumed, straight = load_checkpoint(copy / "model.pt")["model"], load_checkpoint(run_dir / "model.pt")["model"]
    assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in straight)

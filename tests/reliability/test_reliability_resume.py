"""Exact resume: a training process killed (SIGKILL) or stopped (SIGTERM) at a random step and resumed with
`--resume` ends with weights bit-identical to an uninterrupted run with the same seed, in both stages.
"""
import os
import random
import shutil
import signal

import pytest

from tests.helpers.shared_data import SHARED_DATA
from tests.helpers.reliability import (
    assert_bit_identical,
    finish,
    kill,
    load,
    run,
    run_dirs,
    start,
    step_files,
    subset_overrides,
    train_cmd,
    wait_for_checkpoints,
)
from tripletloss.engine.checkpoint import latest_checkpoint, load_checkpoint

EPOCHS = 3          # 8 identities x 10 images, batches of 16: 5 steps an epoch, 15 in all
STEPS = 15


def _orl():
    path = SHARED_DATA / "orl_faces"
    if not path.is_dir():
        pytest.skip(f"{path} is absent (real face data lives in ../shared/data)")
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Overrides for 3-epoch runs checkpointing every step, and the work dir of an uninterrupted reference.

    The reference work dir holds a finished softmax run and a finished triplet run (on that softmax model), both
    from uninterrupted processes. `fresh(name, stage)` returns overrides for a new work dir and that dir; for the
    triplet stage it holds a copy of the reference's stage-1 model, which stage 2 starts from.
    """
    root = tmp_path_factory.mktemp("resume")
    overrides = subset_overrides(root, _orl(), extra=[f"softmax_epochs={EPOCHS}", f"triplet_epochs={EPOCHS}",
                                                    "checkpoint_every_steps=1"])
    ref = run(train_cmd("softmax", overrides))
    assert ref.returncode == 0, ref.stderr[-2000:]
    ref = run(train_cmd("triplet", overrides))
    assert ref.returncode == 0, ref.stderr[-2000:]

    def fresh(name, stage="softmax"):
        work = root / name
        if stage == "triplet":
            stage1 = run_dirs(root / "runs", "softmax")[0]
            (work / stage1.name).mkdir(parents=True)
            shutil.copy(stage1 / "model.pt", work / stage1.name)
        return overrides + [f"work_dir={work}"], work

    return {"overrides": overrides, "ref": root / "runs", "fresh": fresh}


def _reference_model(base, stage):
    return run_dirs(base["ref"], stage)[-1] / "model.pt"


def _metric_rows(run_dir):
    """metrics.csv's rows, with the values of the time/ rows (seconds, different in every run) left out."""
    rows = [line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines()]
    return [row[:4] if row[3].startswith("time/") else row for row in rows]


def _kill_at_random_step(cmd, work, stage, signum):
    """Start `cmd`, send `signum` once a random number of step checkpoints exist; return (proc, run_dir, count)."""
    count = random.randint(1, STEPS - 3)
    proc = start(cmd)
    run_dir = wait_for_checkpoints(proc, work, stage, count)
    kill(proc, signum)
    return proc, run_dir, count


@pytest.mark.parametrize("stage", ["softmax", "triplet"])
def test_sigkill_then_resume_is_bit_identical(base, stage):
    """Stage 1 resumes with a bare `--resume` (latest run), stage 2 with the path of its newest checkpoint."""
    overrides, work = base["fresh"](f"kill-{stage}", stage)
    proc, run_dir, count = _kill_at_random_step(train_cmd(stage, overrides), work, stage, signal.SIGKILL)
    finish(proc)
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "model.pt").exists(), "the run finished before it was killed"
    for path in run_dir.glob("step-*.pt"):   # atomic writes: whatever a kill leaves is a whole checkpoint
        load_checkpoint(path)

    target = [] if stage == "softmax" else [latest_checkpoint(run_dir)]
    resumed = run(train_cmd(stage, overrides, "--resume", *target))
    assert resumed.returncode == 0, f"killed after {count} checkpoints:\n{resumed.stderr[-2000:]}"
    assert f"resuming {run_dir}" in resumed.stdout
    assert f"{STEPS} steps (0 skipped)" in resumed.stdout
    assert_bit_identical(run_dir / "model.pt", _reference_model(base, stage))
    if stage == "softmax":  # stage 1 trained from the decode cache (stage 2 from cached features)
        assert any((work / ".decode_cache").iterdir())
    # rows logged after the last checkpoint were dropped on resume and logged again: none twice, none lost
    assert _metric_rows(run_dir) == _metric_rows(_reference_model(base, stage).parent)


def test_sigterm_to_process_group_checkpoints_and_resumes_exactly(base):
    """SIGTERM to the whole group (as `kill -- -PGID` or a batch scheduler sends it), DataLoader workers included."""
    overrides, work = base["fresh"]("term")
    overrides.append("num_workers=2")
    proc = start(train_cmd("softmax", overrides))
    run_dir = wait_for_checkpoints(proc, work, "softmax", random.randint(1, STEPS - 4))
    os.killpg(proc.pid, signal.SIGTERM)
    stopped = finish(proc)

    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    message = stopped.stderr.strip().splitlines()[-1]
    assert message.startswith("stopped by SIGTERM at epoch ")
    assert f"--resume {run_dir}" in message
    saved = run_dir / message.split("checkpoint ")[1].split(";")[0].rsplit("/", 1)[1]
    assert saved.name in step_files(run_dir)
    state = load(saved)["state"]
    assert 0 < state["step"] < STEPS and f"step {state['step']};" in message

    resumed = run(train_cmd("softmax", overrides, "--resume", run_dir))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at epoch {state['epoch'] + 1}, batch {state['batch']}, step {state['step']}" in resumed.stdout
    assert_bit_identical(run_dir / "model.pt", _reference_model(base, "softmax"))


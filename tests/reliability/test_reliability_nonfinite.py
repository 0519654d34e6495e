"""The NaN/inf guard, driven by a real overflow: softmax_lr=1e30 makes the first update blow the weights up to
~1e28, so the next forward pass overflows float32 and every later loss is non-finite.
"""
import torch

from tests.helpers.reliability import load, run, run_dirs, subset_overrides, train_cmd
from tripletloss.engine.checkpoint import load_checkpoint

MAX_IN_A_ROW = 3


def test_nonfinite_steps_are_skipped_then_training_stops_with_checkpoints_intact(tmp_path, orl_dir):
    overrides = subset_overrides(tmp_path, orl_dir, extra=["softmax_lr=1e30", "checkpoint_every_steps=1",
                                                         "keep_checkpoints=2", "softmax_epochs=3",
                                                         f"max_nonfinite_steps={MAX_IN_A_ROW}"])
    result = run(train_cmd("softmax", overrides))

    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines()
                if line.startswith("warning: non-finite loss or gradient at step")]
    assert len(warnings) == MAX_IN_A_ROW      # the values really overflowed, one warning per skipped step
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {MAX_IN_A_ROW} consecutive steps with a non-finite loss or gradient")
    assert "max_nonfinite_steps" in error

    run_dir = run_dirs(tmp_path / "runs", "softmax")[-1]
    assert not (run_dir / "model.pt").exists()
    kept = sorted(run_dir.glob("step-*.pt"), key=lambda p: int(p.stem[5:]))
    assert len(kept) == 2
    states = [load_checkpoint(path) for path in kept]
    for path, ckpt in zip(kept, states):
        bad = [k for k, v in ckpt["model"].items() if v.is_floating_point() and not torch.isfinite(v).all()]
        assert not bad, f"{path.name} holds non-finite {bad} (BatchNorm statistics of a skipped step?)"
    # Skipped steps change nothing: the two newest checkpoints (both after skipped steps) hold the same model.
    assert states[-1]["state"]["skipped"] >= 1
    first, last = (load(p)["model"] for p in kept)
    assert all(torch.equal(first[k], last[k]) for k in first)

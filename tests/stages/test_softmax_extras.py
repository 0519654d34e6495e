"""facenet's center loss and prelogits norm inside stage 1: switching them on changes nothing else in a step, the
centres follow facenet's rule and live in checkpoints (exact resume), and a missing output is a one-line error."""
import shutil

import pytest
import torch

from tests.helpers.tiny import TINY_SOFTMAX_DROPOUT, tiny_overrides
from tests.helpers.tiny import run_stage
from tripletloss.engine import rng
from tripletloss.engine.checkpoint import load_checkpoint, step_checkpoints
from tripletloss.errors import ConfigError
from tripletloss.losses import center_update
from tripletloss.settings import load_settings
from tripletloss.stages.factory import build_stage
from tripletloss.stages.training_data import load_training_data

CPU = torch.device("cpu")
TERMS = ["center_loss=0.1", "center_loss_alpha=0.5", "prelogits_norm=0.01", "prelogits_norm_p=1.5"]


@pytest.fixture
def overrides(tmp_path, orl_dir):
    """Tiny 32 px net with dropout (so the RNG is part of the step) on 8 ORL identities."""
    sets = tiny_overrides(tmp_path)
    (tmp_path / "nets" / "softmax.yaml").write_text(TINY_SOFTMAX_DROPOUT)
    (tmp_path / "ids.txt").write_text("\n".join(f"s{i}" for i in range(1, 9)) + "\n")
    return sets + [f"data_dir={orl_dir}", f"train_identities={tmp_path / 'ids.txt'}", "deterministic=true"]


def one_step(overrides):
    """Build the stage from seed 0 and run one batch forward and backward (no optimizer step).

    Returns (stage, inputs/labels, loss, stats, {param: grad}, [buffers], torch RNG state afterwards).
    """
    settings = load_settings(overrides=overrides)
    rng.seed_everything(settings["seed"])
    stage = build_stage("softmax", settings, load_training_data(settings), CPU)
    batch = next(iter(stage.batches))
    loss, stats = stage.objective(stage.net, batch, 0)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in stage.net.layers.named_parameters()}
    return (stage, (batch.inputs, batch.labels), loss, stats, grads, [b.clone() for b in stage.net.buffers()],
            torch.get_rng_state())


def test_switching_the_terms_on_changes_only_the_backbone_gradient(overrides):
    off = one_step(overrides)
    on = one_step(overrides + TERMS)
    assert torch.equal(off[1][0], on[1][0]) and torch.equal(off[1][1], on[1][1])  # same batch
    assert on[3]["softmax"] == off[2].item()  # the cross-entropy is untouched
    assert on[2].item() == pytest.approx(off[2].item() + 0.1 * on[3]["center_loss"] + 0.01 * on[3]["prelogits_norm"])
    assert all(torch.equal(a, b) for a, b in zip(off[5], on[5]))  # BatchNorm statistics
    assert torch.equal(off[6], on[6])  # dropout drew the same numbers
    downstream = [k for k in off[4] if k.startswith("fc9.")]
    assert downstream and all(torch.equal(off[4][k], on[4][k]) for k in downstream)
    assert not torch.equal(off[4]["fc8.weight"], on[4]["fc8.weight"])
    assert "center_loss" not in off[3] and set(on[3]) == {"accuracy", "softmax", "center_loss", "prelogits_norm"}


def test_centres_move_by_facenets_rule_after_the_step(overrides):
    stage, (images, labels), *_ = one_step(overrides + TERMS)
    assert torch.equal(stage.centers.value, torch.zeros(8, 32))  # the loss used the centres before the update
    stage.after_step()
    with torch.no_grad():
        features = stage.net(images, ["embedding"])["embedding"]  # train mode: the step's own batch statistics
    expected = center_update(features, labels, torch.zeros(8, 32), 0.5)
    torch.testing.assert_close(stage.centers.value, expected)
    assert stage.centers.value.abs().sum() > 0


def test_resume_with_centres_is_bit_identical(overrides, tmp_path):
    sets = overrides + TERMS + ["checkpoint_every_steps=1", "keep_checkpoints=100"]
    _, run_dir = run_stage("softmax", overrides[-3].split("=", 1)[1], sets, epochs=2)
    steps = step_checkpoints(run_dir)
    assert steps[-1].name == "step-10.pt"
    centres = load_checkpoint(steps[-1])["stage_state"]["centers"]
    assert centres.shape == (8, 32) and centres.abs().sum() > 0
    copy = tmp_path / "copy" / run_dir.name
    shutil.copytree(run_dir, copy)
    for path in [copy / "model.pt", *step_checkpoints(copy)[3:]]:
        path.unlink()
    run_stage("softmax", overrides[-3].split("=", 1)[1], sets, epochs=2, extra=["--resume", str(copy / "step-3.pt")])
    for name in ("model.pt", "step-10.pt"):
        ours, ref = load_checkpoint(copy / name), load_checkpoint(run_dir / name)
        assert all(torch.equal(ours["model"][k], v) for k, v in ref["model"].items())
    assert torch.equal(load_checkpoint(copy / "step-10.pt")["stage_state"]["centers"], centres)


def test_a_net_without_the_needed_output_is_one_line(overrides, tmp_path):
    (tmp_path / "nets" / "softmax.yaml").write_text(TINY_SOFTMAX_DROPOUT.replace(", embedding: bn8", ""))
    settings = load_settings(overrides=overrides + ["center_loss=0.1"])
    with pytest.raises(ConfigError, match="no 'embedding' output, needed by center_loss / prelogits_norm"):
        build_stage("softmax", settings, load_training_data(settings), CPU)

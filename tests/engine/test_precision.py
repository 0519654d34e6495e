"""Mixed precision (`precision` setting): bf16 autocast where the device computes it natively, float32 outputs,
cached features untouched, and bf16 training as reproducible and exactly resumable as fp32 training."""
import shutil

import pytest
import torch

from tests.helpers.tiny import run_stage, tiny_overrides
from tripletloss.engine import precision
from tripletloss.engine.checkpoint import load_checkpoint
from tripletloss.net import build_net

CPU = torch.device("cpu")


@pytest.mark.parametrize("flags, expected", [(set(), "fp32"), ({"avx512_bf16"}, "bf16"), ({"amx_bf16"}, "bf16")])
def test_auto_is_bf16_only_on_cpus_with_native_bf16(monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "_cpu_flags", lambda: flags)
    if expected == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        expected = "fp32"  # oneDNN of this torch build has no bf16 kernels for this CPU
    assert precision.resolve("auto", CPU) == expected
    assert precision.resolve("fp32", CPU) == "fp32" and precision.resolve("bf16", CPU) == "bf16"


@pytest.fixture
def tiny_net(tmp_path):
    overrides = dict(item.split("=", 1) for item in tiny_overrides(tmp_path))
    torch.manual_seed(0)
    return build_net(overrides["softmax_net"], {"num_classes": 5}).eval()


def test_autocast_runs_convolutions_in_bf16_and_returns_float32(tiny_net):
    seen = []
    tiny_net.layers["conv1"].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    images = torch.randn(4, 3, 32, 32)
    mixed = precision.wrap(tiny_net, "bf16", CPU)(images, ["logits", "embedding"])
    full = tiny_net(images, ["logits", "embedding"])
    assert seen == [torch.bfloat16, torch.float32]
    for name in ("logits", "embedding"):
        assert mixed[name].dtype == torch.float32
        assert torch.allclose(mixed[name], full[name], rtol=0.1, atol=0.1)
        assert not torch.equal(mixed[name], full[name])  # it really ran in bf16


def test_cached_features_run_in_float32_unchanged(tiny_net):
    features = {"bn8": torch.randn(4, 32)}
    mixed = precision.wrap(tiny_net, "bf16", CPU)(features, ["logits"])["logits"]
    assert torch.equal(mixed, tiny_net(features, ["logits"])["logits"])


def test_fp32_leaves_the_model_unwrapped(tiny_net):
    assert precision.wrap(tiny_net, "fp32", CPU) is tiny_net


def _weights(run_dir, name="model.pt"):
    return load_checkpoint(run_dir / name)["model"]


def test_bf16_training_is_reproducible_resumable_and_not_fp32(tmp_path, orl_dir):
    base = tiny_overrides(tmp_path) + ["keep_checkpoints=10", "precision=bf16"]
    _, first = run_stage("softmax", orl_dir, base, epochs=2)
    _, again = run_stage("softmax", orl_dir, base + [f"work_dir={tmp_path / 'again'}"], epochs=2)
    _, fp32 = run_stage("softmax", orl_dir, base + [f"work_dir={tmp_path / 'fp32'}", "precision=fp32"], epochs=2)
    resumed = tmp_path / "resumed" / first.name
    shutil.copytree(first, resumed)
    checkpoints = sorted(resumed.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    for path in [resumed / "model.pt", resumed / "best.pt", checkpoints[-1]]:
        path.unlink(missing_ok=True)  # back to the end of epoch 1
    run_stage("softmax", orl_dir, base + [f"work_dir={tmp_path / 'resumed'}"], epochs=2, extra=["--resume",
                                                                                                 str(resumed)])
    reference = _weights(first)
    for other in (again, resumed):
        assert all(torch.equal(reference[k], v) for k, v in _weights(other).items()), other
    assert not all(torch.equal(reference[k], v) for k, v in _weights(fp32).items())

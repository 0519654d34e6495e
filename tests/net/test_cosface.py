"""CosFace in stage 1: the `cosine` layer (scale x cosine, float32 under autocast) and the margin cross-entropy,
against brute-force numpy, and the softmax stage reading the margin from its YAML."""
import numpy as np
import pytest
import torch

from tests.helpers.gradients import numeric_gradient, value_and_grad
from tests.helpers.tiny import run_stage, tiny_overrides
from tripletloss.errors import NetSpecError
from tripletloss.evaluation.runlog import read_metrics
from tripletloss.losses import margin_cross_entropy
from tripletloss.net import build_net
from tripletloss.stages.softmax import logit_margin

RNG = np.random.default_rng(1)
LOGITS = RNG.normal(size=(5, 4)) * 3
LABELS = np.array([0, 3, 3, 1, 2])

COSFACE = """
input: {channels: 3, size: 8}
layers:
  - {name: pool, type: pool, pool: ave, global: true}
  - {name: fc9, type: cosine, num_output: 6, scale: SCALE, margin: MARGIN}
outputs: {logits: fc9, embedding: pool}
"""


def numpy_margin_cross_entropy(logits, labels, margin, smoothing):
    total = 0.0
    for row, y in zip(logits, labels):
        z = row.copy()
        z[y] -= margin
        log_p = z - np.log(np.exp(z - z.max()).sum()) - z.max()
        target = np.full(len(z), smoothing / len(z))
        target[y] += 1 - smoothing
        total -= (target * log_p).sum()
    return total / len(logits)


@pytest.mark.parametrize("margin, smoothing", [(0.0, 0.0), (10.5, 0.0), (4.0, 0.1)])
def test_margin_cross_entropy_value_and_gradient(margin, smoothing):
    labels = torch.tensor(LABELS)
    value, grad = value_and_grad(margin_cross_entropy, LOGITS, labels, margin, smoothing)
    expected = numpy_margin_cross_entropy(LOGITS, LABELS, margin, smoothing)
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(
        grad, numeric_gradient(lambda z: numpy_margin_cross_entropy(z, LABELS, margin, smoothing), LOGITS), atol=1e-7)


def _cosface_net(tmp_path, scale=30, margin=0.35):
    path = tmp_path / "cosface.yaml"
    path.write_text(COSFACE.replace("SCALE", str(scale)).replace("MARGIN", str(margin)))
    return build_net(path)


def test_cosine_layer_is_scaled_cosine_in_float32_under_autocast(tmp_path):
    net = _cosface_net(tmp_path, scale=16)
    x = torch.randn(3, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(x, ["logits"])["logits"]
    features = x.mean((2, 3)).double().numpy()
    weights = net.layers["fc9"].weight.detach().double().numpy()
    cosines = (features / np.linalg.norm(features, axis=1, keepdims=True)) @ \
        (weights / np.linalg.norm(weights, axis=1, keepdims=True)).T
    assert logits.dtype == torch.float32
    np.testing.assert_allclose(logits.detach().double().numpy(), 16 * cosines, rtol=1e-5, atol=1e-5)


def test_the_softmax_stage_takes_the_margin_from_the_logits_layer(tmp_path):
    assert logit_margin(_cosface_net(tmp_path, scale=30, margin=0.35)) == pytest.approx(10.5)
    assert logit_margin(_cosface_net(tmp_path, scale=30, margin=0)) == 0
    plain = build_net("prototxt_like/softmax.yaml", {"num_classes": 3, "embedding_size": 8})
    assert logit_margin(plain) == 0


@pytest.mark.parametrize("scale, margin", [(0, 0.35), (30, 1.5), (30, -0.1)])
def test_bad_scale_or_margin_names_the_layer(tmp_path, scale, margin):
    with pytest.raises(NetSpecError, match="layer 'fc9'.*scale must be > 0 and margin in"):
        _cosface_net(tmp_path, scale, margin)


TINY_COSFACE = """
include: [tiny_backbone.yaml]
layers:
  - {name: fc9, type: cosine, num_output: $num_classes, scale: 16, margin: MARGIN}
outputs: {logits: fc9, embedding: bn8}
"""


def test_stage1_trains_with_the_margin(tmp_path, orl_dir):
    """Same seed and data: the first step's loss is higher with a margin (it enters training), and CosFace's
    stage 1 learns (mean batch accuracy of the last epoch well above chance, 1 in 40)."""
    first_loss, last_accuracy = {}, {}
    for margin in (0.0, 0.2):
        overrides = tiny_overrides(tmp_path / str(margin))
        net = tmp_path / str(margin) / "nets" / "cosface.yaml"
        net.write_text(TINY_COSFACE.replace("MARGIN", str(margin)))
        _, run_dir = run_stage("softmax", orl_dir, overrides + [f"softmax_net={net}", "softmax_label_smoothing=0"],
                               epochs=3)
        metrics = read_metrics(run_dir)
        first_loss[margin] = metrics["train/loss"]["softmax"][1][0]
        last_accuracy[margin] = metrics["train/accuracy"]["softmax"][1][-25:].mean()  # 25 steps an epoch
    assert first_loss[0.2] > first_loss[0.0] + 1.0
    assert last_accuracy[0.2] > 4 / 40

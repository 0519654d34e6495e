"""facenet's stage-1 terms (center loss, prelogits norm) and the distillation loss against brute-force numpy."""
import numpy as np
import pytest
import torch

from tests.helpers.gradients import numeric_gradient, value_and_grad
from tripletloss.losses import (
    PRELOGITS_EPS,
    center_loss,
    center_update,
    distill_loss,
    prelogits_norm,
)

RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(6, 5))
LABELS = np.array([2, 0, 2, 1, 2, 0])
CENTERS = RNG.normal(size=(4, 5))


def numpy_center_loss(features, labels, centers):
    total = 0.0
    for f, y in zip(features, labels):
        for j in range(len(f)):
            total += (f[j] - centers[y, j]) ** 2
    return total / features.size


def numpy_prelogits_norm(features, p):
    norms = [sum((abs(v) + PRELOGITS_EPS) ** p for v in row) ** (1 / p) for row in features]
    return sum(norms) / len(norms)


def test_center_loss_value_and_gradient():
    value, grad = value_and_grad(center_loss, FEATURES, torch.tensor(LABELS), torch.tensor(CENTERS))
    assert value == pytest.approx(numpy_center_loss(FEATURES, LABELS, CENTERS), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_gradient(lambda f: numpy_center_loss(f, LABELS, CENTERS), FEATURES),
                               atol=1e-8)


def test_center_update_is_facenets_scatter_sub():
    """centers[y_i] -= (1 - alpha) * (centers[y_i] - f_i): differences from the old centres, repeats add up."""
    alpha = 0.9
    expected = CENTERS.copy()
    for f, y in zip(FEATURES, LABELS):
        expected[y] -= (1 - alpha) * (CENTERS[y] - f)
    new = center_update(torch.tensor(FEATURES), torch.tensor(LABELS), torch.tensor(CENTERS), alpha).numpy()
    np.testing.assert_allclose(new, expected, rtol=1e-12)
    assert np.array_equal(new[3], CENTERS[3])  # a class not in the batch keeps its centre
    # class 2 appears three times: it moves by three steps' worth, towards the sum of its features
    np.testing.assert_allclose(new[2], CENTERS[2] - 0.1 * (3 * CENTERS[2] - FEATURES[[0, 2, 4]].sum(0)),
                               rtol=1e-12)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0])
def test_prelogits_norm_value_and_gradient(p):
    value, grad = value_and_grad(prelogits_norm, FEATURES, p)
    assert value == pytest.approx(numpy_prelogits_norm(FEATURES, p), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_gradient(lambda f: numpy_prelogits_norm(f, p), FEATURES), atol=1e-7)


def numpy_distill(student, teacher, mask, kind):
    rows = []
    for s, t, m in zip(student, teacher, mask):
        if not m:
            continue
        if kind == "cosine":
            s, t = s / np.sqrt((s ** 2).sum()), t / np.sqrt((t ** 2).sum())
            rows.append(((s - t) ** 2).sum())
        else:
            rows.append(((s - t) ** 2).mean())
    return sum(rows) / max(len(rows), 1)


@pytest.mark.parametrize("kind", ["cosine", "mse"])
def test_distill_loss_value_and_gradient_over_masked_rows(kind):
    teacher = RNG.normal(size=FEATURES.shape)
    teacher[1] = 0.0  # an image without a teacher copy: zeros, masked out
    mask = np.array([True, False, True, True, False, True])
    value, grad = value_and_grad(distill_loss, FEATURES, torch.tensor(teacher), torch.tensor(mask), kind)
    assert value == pytest.approx(numpy_distill(FEATURES, teacher, mask, kind), rel=1e-12)
    expected = numeric_gradient(lambda s: numpy_distill(s, teacher, mask, kind), FEATURES)
    np.testing.assert_allclose(grad, expected, atol=1e-8)
    assert not grad[~mask].any()


def test_distill_loss_without_any_teacher_row_is_a_zero_with_a_gradient():
    student = torch.tensor(FEATURES, requires_grad=True)
    loss = distill_loss(student, torch.zeros_like(student), torch.zeros(6, dtype=torch.bool), "cosine")
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(student.grad, torch.zeros_like(student))

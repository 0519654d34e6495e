"""pinguo's recipe (the classic Caffe project) and OpenFace's extra negatives: batch samplers, selection, loss.

The references below re-implement the classic project's data and select layers as plain Python loops over the
same batch (sorted(..., reverse=True) on {index: distance} items, squared distances by np.dot).
"""
import numpy as np
import pytest
import torch

from tripletloss.data.samplers import PinguoBatches, PKBatches
from tripletloss.errors import ConfigError
from tripletloss.losses import pinguo_loss
from tripletloss.mining import STRATEGIES, select_triplets


def labels_of(counts):
    return np.repeat(np.arange(len(counts)), counts)


def pinguo_select_reference(x, t):
    """The classic select layer on batch `x` (3T rows): [(anchor i, positive row, negative row)] and the indices
    of triplets without gradient (d_ap >= d_an, distances from the first anchor copy)."""
    data = x.numpy()
    aps = {i + t: float(np.dot(data[0] - data[i + t], data[0] - data[i + t])) for i in range(t)}
    ans = {i + 2 * t: float(np.dot(data[0] - data[i + 2 * t], data[0] - data[i + 2 * t])) for i in range(t)}
    aps = sorted(aps.items(), key=lambda d: d[1], reverse=True)
    ans = sorted(ans.items(), key=lambda d: d[1], reverse=True)
    triplets = [(i, aps[i][0], ans[i][0]) for i in range(t)]
    return triplets, [i for i in range(t) if aps[i][1] >= ans[i][1]]


def pinguo_batch(t, seed, ties=False):
    """A float64 batch in pinguo's layout (labels 0 x 2T, then other identities) and its labels."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3 * t, 8, generator=gen, dtype=torch.float64)
    x[:t] = x[0]
    if ties:  # equal distances: repeated positives and negatives, and a negative at a positive's distance
        x[t + 1] = x[t + 3] = x[t]
        x[2 * t + 2] = x[2 * t + 4] = x[2 * t]
        x[2 * t + 1] = x[t + 2]
    labels = torch.cat([torch.zeros(2 * t, dtype=torch.long), torch.randint(1, 4, (t,), generator=gen)])
    return x, labels


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_pinguo_selection_equals_the_classic_select_layer(seed, ties):
    t = 10
    x, labels = pinguo_batch(t, seed, ties)
    a, p, n = select_triplets(x, labels, "pinguo", backend="torch")
    expected, _ = pinguo_select_reference(x, t)
    assert list(zip(a.tolist(), p.tolist(), n.tolist())) == expected


def test_pinguo_runs_in_torch_whatever_the_backend():
    x, labels = pinguo_batch(4, 0)
    for backend in ("auto", "cuda"):
        assert all(torch.equal(u, v) for u, v in zip(select_triplets(x, labels, "pinguo", backend=backend),
                                                      select_triplets(x, labels, "pinguo", backend="torch")))


def test_pinguo_refuses_another_batch_layout():
    with pytest.raises(ValueError, match="pinguo"):
        select_triplets(torch.randn(12, 4), torch.arange(4).repeat_interleave(3), "pinguo")


def _check_pinguo_loss(seed, t=10, margin=0.5):
    """Compare pinguo_loss with the classic layers' value and backward on one batch; return how many of its
    triplets got no gradient from the select layer's rule."""
    x, labels = pinguo_batch(t, seed)
    x = x * 0.3  # distances near the margin: some triplets active, some without gradient, some inactive
    x.requires_grad_(True)
    a, p, n = select_triplets(x.detach(), labels, "pinguo")
    loss, stats = pinguo_loss(x, a, p, n, margin)
    loss.backward()
    triplets, no_gradient = pinguo_select_reference(x.detach(), t)
    data = x.detach().numpy()
    value, grad = 0.0, np.zeros_like(data)
    for i, (ia, ip, i_n) in enumerate(triplets):
        ap = np.dot(data[ia] - data[ip], data[ia] - data[ip])
        an = np.dot(data[ia] - data[i_n], data[ia] - data[i_n])
        value += max(margin + ap - an, 0.0)
        if i not in no_gradient and margin + ap - an > 0:  # the loss layer's backward, routed by the select layer
            grad[ia] += (data[i_n] - data[ip]) / t
            grad[ip] += (data[ip] - data[ia]) / t
            grad[i_n] += (data[ia] - data[i_n]) / t
    assert loss.item() == pytest.approx(value / (2 * t), rel=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-10, atol=1e-12)
    assert stats["triplets"] == t
    return len(no_gradient)


def test_pinguo_loss_value_and_gradient_are_the_classic_layers():
    without_gradient = [_check_pinguo_loss(seed) for seed in range(6)]
    assert 0 < sum(without_gradient) < 6 * 10  # the cases exercise both sides of the no-gradient rule


def test_pinguo_batches_follow_the_classic_data_layer():
    labels = labels_of([3, 12, 1, 6, 15])
    sampler = PinguoBatches(labels, triplets=4, seed=0)
    anchors = [i for i in range(len(labels)) if np.bincount(labels)[labels[i]] >= 2]
    assert sampler.singletons == 1 and len(sampler.batches(0)) == len(anchors)
    walked = [batch[0][0] for epoch in (0, 1) for batch in sampler.batches(epoch)]
    assert walked == anchors * 2  # anchors in image-list order, continuing across epochs
    for batch in sampler.batches(0) + sampler.batches(1):
        idx = np.array([i for i, _ in batch])
        anchor, positives, negatives = idx[:4], idx[4:8], idx[8:]
        assert (anchor == anchor[0]).all() and (labels[positives] == labels[anchor[0]]).all()
        assert anchor[0] not in positives
        assert len(set(positives)) == min(4, np.bincount(labels)[labels[anchor[0]]] - 1)
        assert len(set(negatives)) == 4 and (labels[negatives] != labels[anchor[0]]).all()


def test_pinguo_batches_are_seeded_and_resumable():
    labels = labels_of([5] * 8)
    sampler = PinguoBatches(labels, 3, seed=7, batches_per_epoch=6)
    assert sampler.batches(1) == PinguoBatches(labels, 3, seed=7, batches_per_epoch=6).batches(1)
    assert sampler.batches(1) != PinguoBatches(labels, 3, seed=8, batches_per_epoch=6).batches(1)
    sampler.set_epoch(1, start_batch=4)
    assert list(sampler) == sampler.batches(1)[4:]


def test_extra_negatives_are_single_images_of_identities_outside_the_batch():
    labels = labels_of([4] * 10 + [1] * 5)
    sampler = PKBatches(labels, 3, 2, seed=0, batches_per_epoch=12, extra_negatives=4)
    for batch in sampler.batches(0):
        idx = np.array([i for i, _ in batch])
        core, extra = labels[idx[:6]], labels[idx[6:]]
        assert len(extra) == 4 and len(set(extra)) == 4 and not set(extra) & set(core)
    with pytest.raises(ConfigError, match="extra_negatives"):
        PKBatches(labels, 3, 2, seed=0, extra_negatives=13)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_extra_negatives_are_only_ever_negatives(strategy):
    labels = labels_of([4] * 10 + [1] * 5)
    sampler = PKBatches(labels, 3, 2, seed=1, batches_per_epoch=5, extra_negatives=4)
    gen = torch.Generator().manual_seed(0)
    used_as_negative = False
    for batch in sampler.batches(0):
        idx = torch.tensor([i for i, _ in batch])
        x = torch.nn.functional.normalize(torch.randn(len(idx), 4, generator=gen), dim=1)
        a, p, n = select_triplets(x, torch.as_tensor(labels)[idx], strategy, margin=2.0, backend="torch")
        assert (a < 6).all() and (p < 6).all()
        used_as_negative |= bool((n >= 6).any())
    assert used_as_negative

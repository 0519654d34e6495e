"""Triplet loss on selected (anchor, positive, negative) index triplets: the mean hinge, and pinguo's variant."""
import torch
import torch.nn.functional as F


def triplet_loss(embeddings, anchor, positive, negative, margin, squared=True):
    """Mean hinge max(0, d(a,p) - d(a,n) + margin) over the given triplets of rows of `embeddings`.

    Returns (loss, stats) where stats holds floats: active (fraction with a positive hinge), d_ap, d_an (means)
    and triplets (count). With no triplets the loss is a zero that still depends on `embeddings`.
    """
    if anchor.numel() == 0:
        zero = embeddings.sum() * 0.0
        return zero, {"active": 0.0, "d_ap": 0.0, "d_an": 0.0, "triplets": 0}
    a, p, n = embeddings[anchor], embeddings[positive], embeddings[negative]
    d_ap, d_an = (a - p).pow(2).sum(1), (a - n).pow(2).sum(1)
    if not squared:
        d_ap, d_an = d_ap.clamp_min(1e-12).sqrt(), d_an.clamp_min(1e-12).sqrt()
    hinge = F.relu(d_ap - d_an + margin)
    stats = {"active": (hinge > 0).float().mean().item(), "d_ap": d_ap.mean().item(),
             "d_an": d_an.mean().item(), "triplets": int(anchor.numel())}
    return hinge.mean(), stats


def _distances(embeddings, anchor, other):
    return (embeddings[anchor] - embeddings[other]).pow(2).sum(1)


def pinguo_loss(embeddings, anchor, positive, negative, margin):
    """pinguo's loss on the T triplets of tripletloss.mining's "pinguo" selection: sum of
    max(0, margin + d_ap - d_an) / (2T), squared euclidean distances.

    As in its select layer, a triplet whose positive is not closer to the first anchor copy than its negative
    (d_ap >= d_an) passes no gradient, though its hinge still counts in the value. Returns (loss, stats) like
    triplet_loss; `active` is the fraction of triplets with a gradient (positive hinge, d_ap < d_an).
    """
    t = anchor.numel()
    if t == 0:
        return triplet_loss(embeddings, anchor, positive, negative, margin)
    with torch.no_grad():
        first = anchor[:1].expand(t)
        trains = _distances(embeddings, first, positive) < _distances(embeddings, first, negative)
    d_ap, d_an = _distances(embeddings, anchor, positive), _distances(embeddings, anchor, negative)
    hinge = F.relu(margin + d_ap - d_an)
    stats = {"active": ((hinge > 0) & trains).float().mean().item(), "d_ap": d_ap.mean().item(),
             "d_an": d_an.mean().item(), "triplets": t}
    return torch.where(trains, hinge, hinge.detach()).sum() / (2 * t), stats

"""Triplet loss on selected (anchor, positive, negative) index triplets."""
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

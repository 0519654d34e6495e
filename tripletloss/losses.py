"""Losses: the triplet loss of stage 2 and pinguo's variant, stage 1's cross-entropy (with CosFace's margin), and
the extra stage-1 terms (facenet's center loss and prelogits norm, distillation towards a teacher's descriptors)."""
import torch
import torch.nn.functional as F

#: facenet's train_softmax.py adds this to |x| before the p-norm (keeps the gradient finite at 0 for p < 1).
PRELOGITS_EPS = 1e-4


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


def margin_cross_entropy(logits, labels, margin=0.0, label_smoothing=0.0):
    """Cross-entropy of `logits` (N, C) against `labels` (N,) after subtracting `margin` from each row's true-class
    logit (CosFace's large margin cosine loss when the logits are scaled cosines; plain cross-entropy at 0).
    Returns the mean loss (a scalar tensor)."""
    if margin:
        logits = logits - margin * F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


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


def center_loss(features, labels, centers):
    """facenet's center loss: mean over every element of (features - centers[labels])^2.

    features (B, D) with autograd, labels (B,) int, centers (C, D) without gradient. Returns a scalar tensor.
    """
    return (features - centers[labels]).pow(2).mean()


def center_update(features, labels, centers, alpha):
    """facenet's center update (tf.scatter_sub): centers[y_i] -= (1 - alpha) * (centers[y_i] - f_i) for every
    row i, all differences taken from the centers before the update, repeated labels accumulating.

    Returns the updated (C, D) centers as a new tensor; `features` are detached.
    """
    diff = (1 - alpha) * (centers[labels] - features.detach())
    return centers.index_add(0, labels, diff, alpha=-1)


def prelogits_norm(features, p):
    """facenet's prelogits norm: the batch mean of the p-norm of (|f_i| + 1e-4) over each row f_i of (B, D)."""
    return torch.linalg.vector_norm(features.abs() + PRELOGITS_EPS, ord=p, dim=1).mean()


def _cosine_distance(student, teacher):
    return (F.normalize(student, dim=1) - F.normalize(teacher, dim=1)).pow(2).sum(1)


def _mean_squared_error(student, teacher):
    return (student - teacher).pow(2).mean(1)


#: distill_loss's kinds (the teacher_loss setting's values): each the per-row distance of (B, D) student and teacher.
DISTILL_DISTANCES = {"cosine": _cosine_distance, "mse": _mean_squared_error}


def distill_loss(student, teacher, mask, kind):
    """How far the student's descriptors (B, D) are from the teacher's (B, D): the mean over the rows where
    `mask` (B,) is true of a per-row distance (0, still depending on `student`, when no row is).

    kind "cosine": squared distance between the L2-normalised rows (2 - 2 cos); "mse": mean over the dimensions
    of (student - teacher)^2.
    """
    rows = DISTILL_DISTANCES[kind](student, teacher)
    weight = mask.to(rows.dtype)
    return (rows * weight).sum() / weight.sum().clamp_min(1.0)

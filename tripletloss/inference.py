"""Running a network over image files: embeddings for evaluation/export and features for stage-2 caching."""
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from tripletloss.data.decode import BadImageError, read_image
from tripletloss.data.jitter import jitter_crops
from tripletloss.data.transforms import to_input
from tripletloss.data.workers import make_loader
from tripletloss.engine.checkpoint import load_checkpoint, load_exact
from tripletloss.engine.device import pick_device
from tripletloss.errors import CheckpointError
from tripletloss.net import Net


class _Images(Dataset):
    """Input tensors (C, H, W) of image files or RGB uint8 arrays (already decoded, e.g. aligned faces), or with
    `jitter` J > 0 their J jittered copies (J, C, H, W)."""

    def __init__(self, images, preprocess, jitter=0):
        self.images, self.preprocess, self.jitter = images, preprocess, jitter

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        """(input tensor(s), "") for item i, or (zeros, the one-line reason) when its file cannot be decoded."""
        item = self.images[i]
        in_memory = isinstance(item, np.ndarray)
        try:
            image = item if in_memory else read_image(item)
        except BadImageError as exc:
            size = self.preprocess["size"]
            shape = (self.jitter, 3, size, size) if self.jitter else (3, size, size)
            return torch.zeros(shape), str(exc)
        if not self.jitter:
            return to_input(image, self.preprocess), ""
        return torch.stack([to_input(crop, self.preprocess)    # jitter seeded by the path, or the index in memory
                            for crop in jitter_crops(image, self.jitter, i if in_memory else item)]), ""


def batch_outputs(net, images, output, with_mirror):
    """Blob `output` of `net` for a batch of input tensors (N, C, H, W) and, `with_mirror`, for their mirror
    images (the batch flipped along W, exactly what centre-crop preprocessing of mirrored files gives).
    Returns a float32 CPU tensor (V, N, ...): V = 2 (plain, mirrored) with the mirror, else 1. A batch
    (N, J, C, H, W) of J jittered copies per image gives V = J (2J with the mirror)."""
    if images.dim() == 5:                                     # (N, J, C, H, W): J jittered copies of each image
        n, j = images.shape[:2]
        out = batch_outputs(net, images.flatten(0, 1), output, with_mirror)
        return out.unflatten(1, (n, j)).transpose(1, 2).flatten(0, 1)
    batches = (images, images.flip(3)) if with_mirror else (images,)
    return torch.stack([net(batch, [output])[output].float().cpu() for batch in batches])


@torch.no_grad()
def compute_outputs(net, paths, preprocess, output, device, with_mirror=False, batch_size=64, num_workers=2,
                    progress=True, jitter=0, bad=None):
    """Run `net` in eval mode on the images at `paths` (files or RGB arrays; centre crop; each decoded once).

    Returns batch_outputs' float32 CPU tensor (V, N, ...) of blob `output` over all images; with `jitter` J > 0
    the variants are J jittered copies of each image (tripletloss.data.jitter) instead of the image itself.
    Restores the net's training mode. An image that cannot be decoded raises BadImageError naming it, unless a
    list `bad` is given: then its index is appended to `bad`, a warning naming it is printed and its row is left
    out.
    """
    was_training = net.training
    net.eval()
    loader = make_loader(_Images(list(paths), preprocess, jitter), num_workers,
                         batch_size=max(1, batch_size // max(jitter, 1)))
    chunks, problems = [], []
    for images, reasons in tqdm(loader, desc="embedding", disable=not progress, dynamic_ncols=True):
        chunks.append(batch_outputs(net, images.to(device), output, with_mirror))
        problems.extend(reasons)
    net.train(was_training)
    out = torch.cat(chunks, dim=1) if chunks else torch.empty((1 + with_mirror) * max(jitter, 1), 0, 0)
    return _drop_bad(out, problems, bad)


def _drop_bad(outputs, reasons, bad):
    """`outputs` (V, N, ...) without the rows whose reason is not "" (recorded in list `bad`, each with a
    warning); BadImageError with the first reason when `bad` is None."""
    failed = [i for i, reason in enumerate(reasons) if reason]
    if failed and bad is None:
        raise BadImageError(reasons[failed[0]])
    for i in failed:
        print(f"warning: {reasons[i]}; left out", file=sys.stderr)
        bad.append(i)
    keep = [i for i, reason in enumerate(reasons) if not reason]
    return outputs[:, keep] if failed else outputs


class Embedder:
    """Maps face image files to L2-normalised embeddings with a network and its preprocess dict; with `jitter`
    J > 0 each embedding is the mean over J jittered copies of the image (dlib's num_jitters); with a FaceAligner
    (tripletloss.face_input), embed_faces aligns raw photos first."""

    def __init__(self, net, preprocess, device=None, output="embedding", jitter=0, aligner=None, calibration=None):
        self.net, self.preprocess, self.output, self.jitter = net, preprocess, output, jitter
        self.aligner, self.calibration = aligner, calibration
        self.device = device or next(net.parameters()).device

    def embed_paths(self, paths, batch_size=64, flip=False, progress=True, bad=None):
        """Return a float32 (N, D) numpy array of unit-length embeddings for the images at `paths`.

        With `flip`, each embedding is the normalised mean of the image's and its mirror image's embeddings (of
        each jittered copy's and its mirror's with jitter). Undecodable images: BadImageError, or with a list
        `bad`, left out and their indices appended to it.
        """
        variants = compute_outputs(self.net, paths, self.preprocess, self.output, self.device, with_mirror=flip,
                                   batch_size=batch_size, progress=progress, jitter=self.jitter, bad=bad)
        emb = F.normalize(variants.flatten(2), dim=2).sum(0)
        return F.normalize(emb, dim=1).numpy().astype(np.float32)

    def embed_faces(self, paths, flip=False, progress=True):
        """Embed the faces of image files, aligning them first when the embedder has an aligner.

        Returns (emb, found): emb a float32 (M, D) array for the M images where a face was found, in order,
        and found a bool (N,) array over `paths`. Without an aligner every decodable image counts as found.
        """
        if self.aligner is None:  # an image that cannot be decoded counts as not found (with a warning)
            bad, found = [], np.ones(len(paths), dtype=bool)
            emb = self.embed_paths(paths, flip=flip, progress=progress, bad=bad)
            found[bad] = False
            return emb, found
        faces = self.aligner.faces(paths, progress=progress)
        found = np.array([face is not None for face in faces], dtype=bool)
        kept = [face for face in faces if face is not None]
        return self.embed_paths(kept, flip=flip, progress=progress), found


def net_from_checkpoint(ckpt, source):
    """Rebuild the Net stored in checkpoint dict `ckpt` (its resolved spec) and load its weights exactly."""
    try:
        net = Net(ckpt["net"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"{source}: damaged checkpoint: its stored network cannot be built "
                              f"({type(exc).__name__}: {exc})") from None
    load_exact(net, ckpt["model"], source)
    return net


def load_embedder(path, device=None, jitter=0):
    """Load the checkpoint at `path` and return an Embedder on `device` (default: CUDA if available) averaging
    `jitter` jittered copies of each image (0: the image itself); its `calibration` is the checkpoint's (see
    tripletloss.evaluation.calibration), or None."""
    ckpt = load_checkpoint(path)
    device = pick_device(device or "auto")
    net = net_from_checkpoint(ckpt, path).to(device).eval()
    return Embedder(net, ckpt["preprocess"], device, jitter=jitter, calibration=ckpt.get("calibration"))

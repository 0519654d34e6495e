"""Running a network over image files: embeddings for evaluation/export and features for stage-2 caching."""
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tripletloss.data.decode import read_image
from tripletloss.data.transforms import to_input
from tripletloss.engine.checkpoint import load_checkpoint, load_exact
from tripletloss.net import Net


class _Images(Dataset):
    """Network inputs of image files or of RGB uint8 arrays (already decoded, e.g. aligned faces)."""

    def __init__(self, images, preprocess):
        self.images, self.preprocess = images, preprocess

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i]
        return to_input(image if isinstance(image, np.ndarray) else read_image(image), self.preprocess)


def pick_device(name="auto"):
    """Return the torch.device for a setting: "auto" means CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def batch_outputs(net, images, output, with_mirror):
    """Blob `output` of `net` for a batch of input tensors (N, C, H, W) and, `with_mirror`, for their mirror
    images (the batch flipped along W, exactly what centre-crop preprocessing of mirrored files gives).
    Returns a float32 CPU tensor (V, N, ...): V = 2 (plain, mirrored) with the mirror, else 1."""
    batches = (images, images.flip(3)) if with_mirror else (images,)
    return torch.stack([net(batch, [output])[output].float().cpu() for batch in batches])


@torch.no_grad()
def compute_outputs(net, paths, preprocess, output, device, with_mirror=False, batch_size=64, num_workers=2,
                    progress=True):
    """Run `net` in eval mode on the images at `paths` (files or RGB arrays; centre crop; each decoded once).

    Returns batch_outputs' float32 CPU tensor (V, N, ...) of blob `output` over all images. Restores the net's
    training mode.
    """
    was_training = net.training
    net.eval()
    loader = DataLoader(_Images(list(paths), preprocess), batch_size=batch_size, num_workers=num_workers)
    chunks = [batch_outputs(net, images.to(device), output, with_mirror)
              for images in tqdm(loader, desc="embedding", disable=not progress, dynamic_ncols=True)]
    net.train(was_training)
    return torch.cat(chunks, dim=1) if chunks else torch.empty(1 + with_mirror, 0, 0)


class Embedder:
    """Maps face image files to L2-normalised embeddings with a network and its preprocess dict; with a
    FaceAligner (tripletloss.face_input), embed_faces aligns raw photos first."""

    def __init__(self, net, preprocess, device=None, output="embedding", aligner=None, calibration=None):
        self.net, self.preprocess, self.output, self.aligner = net, preprocess, output, aligner
        self.calibration = calibration
        self.device = device or next(net.parameters()).device

    def embed_paths(self, paths, batch_size=64, flip=False, progress=True):
        """Return a float32 (N, D) numpy array of unit-length embeddings for the images at `paths`.

        With `flip`, each embedding is the normalised mean of the image's and its mirror image's embeddings.
        """
        variants = compute_outputs(self.net, paths, self.preprocess, self.output, self.device, with_mirror=flip,
                                   batch_size=batch_size, progress=progress)
        emb = F.normalize(variants.flatten(2), dim=2).sum(0)
        return F.normalize(emb, dim=1).numpy().astype(np.float32)

    def embed_faces(self, paths, flip=False, progress=True):
        """Embed the faces of image files, aligning them first when the embedder has an aligner.

        Returns (emb, found): emb a float32 (M, D) array for the M images where a face was found, in order,
        and found a bool (N,) array over `paths`. Without an aligner every image counts as found.
        """
        if self.aligner is None:
            return self.embed_paths(paths, flip=flip, progress=progress), np.ones(len(paths), dtype=bool)
        faces = self.aligner.faces(paths, progress=progress)
        found = np.array([face is not None for face in faces], dtype=bool)
        kept = [face for face in faces if face is not None]
        return self.embed_paths(kept, flip=flip, progress=progress), found


def net_from_checkpoint(ckpt, source):
    """Rebuild the Net stored in checkpoint dict `ckpt` (its resolved spec) and load its weights exactly."""
    net = Net(ckpt["net"])
    load_exact(net, ckpt["model"], source)
    return net


def load_embedder(path, device=None):
    """Load the checkpoint at `path` and return an Embedder on `device` (default: CUDA if available); its
    `calibration` is the checkpoint's (see tripletloss.evaluation.calibration), or None."""
    ckpt = load_checkpoint(path)
    device = pick_device(device or "auto")
    net = net_from_checkpoint(ckpt, path).to(device).eval()
    return Embedder(net, ckpt["preprocess"], device, calibration=ckpt.get("calibration"))

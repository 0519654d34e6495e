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
    def __init__(self, paths, preprocess, flip):
        self.paths, self.preprocess, self.flip = paths, preprocess, flip

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return to_input(read_image(self.paths[i]), self.preprocess, flip=self.flip)


def pick_device(name="auto"):
    """Return the torch.device for a setting: "auto" means CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def compute_outputs(net, paths, preprocess, output, device, flip=False, batch_size=64, num_workers=2,
                    progress=True):
    """Run `net` in eval mode on the images at `paths` (centre crop, mirrored if `flip`).

    Returns the float32 CPU tensor (N, ...) of the named `output` blob. Restores the net's training mode.
    """
    was_training = net.training
    net.eval()
    loader = DataLoader(_Images(list(paths), preprocess, flip), batch_size=batch_size, num_workers=num_workers)
    chunks = []
    for images in tqdm(loader, desc=f"embedding{' (flipped)' if flip else ''}", disable=not progress,
                       dynamic_ncols=True):
        chunks.append(net(images.to(device), [output])[output].float().cpu())
    net.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0)


class Embedder:
    """Maps face image files to L2-normalised embeddings with a network and its preprocess dict."""

    def __init__(self, net, preprocess, device=None, output="embedding"):
        self.net, self.preprocess, self.output = net, preprocess, output
        self.device = device or next(net.parameters()).device

    def embed_paths(self, paths, batch_size=64, flip=False, progress=True):
        """Return a float32 (N, D) numpy array of unit-length embeddings for the images at `paths`.

        With `flip`, each embedding is the normalised mean of the image's and its mirror image's embeddings.
        """
        emb = F.normalize(self._run(paths, False, batch_size, progress), dim=1)
        if flip:
            emb = F.normalize(emb + F.normalize(self._run(paths, True, batch_size, progress), dim=1), dim=1)
        return emb.numpy().astype(np.float32)

    def _run(self, paths, flip, batch_size, progress):
        out = compute_outputs(self.net, paths, self.preprocess, self.output, self.device, flip=flip,
                              batch_size=batch_size, progress=progress)
        return out.flatten(1)


def net_from_checkpoint(ckpt, source):
    """Rebuild the Net stored in checkpoint dict `ckpt` (its resolved spec) and load its weights exactly."""
    net = Net(ckpt["net"])
    load_exact(net, ckpt["model"], source)
    return net


def load_embedder(path, device=None):
    """Load the checkpoint at `path` and return an Embedder on `device` (default: CUDA if available)."""
    ckpt = load_checkpoint(path)
    device = pick_device(device or "auto")
    net = net_from_checkpoint(ckpt, path).to(device).eval()
    return Embedder(net, ckpt["preprocess"], device)

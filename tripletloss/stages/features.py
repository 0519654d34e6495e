"""Stage 2's feature cache: when every layer up to the net's `features` output is frozen, that output is computed
once per training image (centre crop and mirror image) and epochs run on it (stages.batches.FeatureBatches)."""
import torch
from tqdm import tqdm

from tripletloss.data.dataset import FaceDataset
from tripletloss.data.workers import make_loader
from tripletloss.inference import batch_outputs

CHUNK = 64  # images per forward pass while caching


def cacheable_top(net):
    """The layer output (top) named by `net`'s `features` output if every layer up to it is frozen or
    parameter-free (and none is dropout), else None."""
    top = net.spec["outputs"].get("features")
    frozen = set(net.frozen_layers())
    for layer in net.spec["layers"]:
        if net.has_state(layer["name"]) and layer["name"] not in frozen or layer["type"] == "dropout":
            return None
        if layer["top"] == top:
            return top
    return None


@torch.no_grad()
def cache_features(net, top, paths, labels, preprocess, num_workers, device, progress=True):
    """Compute layer output `top` of `net` (on `device`) for every image of `paths`, centre crop and mirrored.

    Returns (features (2, N, ...) float32 CPU tensor, {index: path} of undecodable images), whose features are
    those of another image of the same identity, as in training. The net is left in training mode.
    """
    net.eval()
    dataset = FaceDataset(paths, labels, preprocess, train=False)
    bad_files, chunks = {}, []
    loader = make_loader(dataset, num_workers, batch_size=CHUNK)
    for images, _, _, bad_paths in tqdm(loader, desc="features", disable=not progress, dynamic_ncols=True):
        bad_files.update({len(chunks) * CHUNK + i: path for i, path in enumerate(bad_paths) if path})
        chunks.append(batch_outputs(net, images.to(device), top, with_mirror=True))
    net.train()
    return torch.cat(chunks, dim=1), bad_files

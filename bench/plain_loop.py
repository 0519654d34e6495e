"""bench/stage1.py's peer: the training loop a user would write with plain PyTorch instead of this toolkit.

ImageFolder + transforms (Resize, RandomCrop, RandomHorizontalFlip, ToTensor, Normalize) + DataLoader, the same
YAML network, SGD, batch size, torch threads and workers as the toolkit's run with the same settings. torchvision's
own classes are used when it imports (its CPU build must match torch's); otherwise the same PIL calls written out.
"""
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from tripletloss.data.folders import read_identity_list, scan_folders
from tripletloss.data.samplers import PKBatches
from tripletloss.engine.loop import set_learning_rate, timed
from tripletloss.losses import triplet_loss
from tripletloss.mining import select_triplets
from tripletloss.net import build_net
from tripletloss.resources import resolve_path
from tripletloss.settings import load_settings
from tripletloss.settings_schema import stage_settings


class PlainTransform:
    """torchvision's Compose([Resize((resize, resize)), RandomCrop(size), RandomHorizontalFlip(), ToTensor(),
    Normalize(mean, std)]) on a PIL image, with the calls torchvision makes."""

    def __init__(self, size, resize, mean, std):
        self.size, self.resize = size, resize
        self.mean, self.std = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]

    def __call__(self, img):
        img = img.resize((self.resize, self.resize), Image.BILINEAR)
        top, left = (int(torch.randint(0, self.resize - self.size + 1, (1,))) for _ in range(2))
        img = img.crop((left, top, left + self.size, top + self.size))
        if torch.rand(1) < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.array(img, np.uint8)).permute(2, 0, 1).contiguous().float().div(255)
        return (x - self.mean) / self.std


class PlainImageFolder(Dataset):
    """torchvision's ImageFolder: (transform(PIL RGB image), class index) per file."""

    def __init__(self, paths, labels, transform):
        self.samples, self.transform = list(zip(paths, labels)), transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        with open(path, "rb") as f:
            return self.transform(Image.open(f).convert("RGB")), label


def image_folder(settings):
    """The peer's dataset over the settings' data and identities (pixels in 0..1, normalised as the toolkit's)."""
    data_dir = settings["data_dir"]
    if not data_dir:
        from tripletloss.data.synthetic import ensure_default_dataset
        data_dir = str(ensure_default_dataset())
    wanted = read_identity_list(settings["train_identities"]) if settings["train_identities"] else None
    args = (settings["image_size"], settings["resize_size"], [127.5 / 255] * 3, [128 / 255] * 3)
    try:
        from torchvision import datasets, transforms
    except ImportError:
        paths, labels, _ = scan_folders(data_dir, wanted)
        return PlainImageFolder(paths, labels, PlainTransform(*args))
    root = Path(tempfile.mkdtemp(prefix="plain_loop_"))
    for ident in Path(data_dir).iterdir():
        if ident.is_dir() and (wanted is None or ident.name in wanted):
            (root / ident.name).symlink_to(ident.resolve())
    return datasets.ImageFolder(str(root), transforms.Compose([
        transforms.Resize((args[1], args[1])), transforms.RandomCrop(args[0]), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(args[2], args[3])]))


def plain_loop(stage, sets):
    """Train `stage` ('softmax': the settings' epochs; 'triplet': batches_per_epoch P x K steps) with the plain
    loop under `--set` overrides `sets`; return {wait, compute: summed seconds, steps, batch}."""
    s = load_settings(overrides=sets)
    dataset = image_folder(s)
    labels = [label for _, label in dataset.samples]
    variables = {"num_classes": max(labels) + 1, "embedding_size": s["embedding_size"]}
    own = stage_settings(s, stage)
    net = build_net(resolve_path(own["net"]), variables)
    groups = net.param_groups(s["weight_decay"])
    set_learning_rate(groups, own["lr"])
    opt = torch.optim.SGD(groups, momentum=s["momentum"])
    return _train(net, opt, stage, s, dataset, labels)


def _loader(stage, s, dataset, labels):
    """The DataLoader of the plain loop: shuffled batches, or P x K batches of indices."""
    if stage == "softmax":
        return DataLoader(dataset, s["softmax_batch_size"], shuffle=True, num_workers=s["num_workers"],
                          drop_last=True)
    pk = PKBatches(labels, s["identities_per_batch"], s["images_per_identity"], s["seed"], s["batches_per_epoch"])
    return DataLoader(dataset, batch_sampler=[[i for i, _ in b] for b in pk.batches(0)],
                      num_workers=s["num_workers"])


def _objective(net, stage, s, images, labels):
    """Cross-entropy of fc9 (softmax) or triplet loss over mined triplets (triplet)."""
    if stage == "softmax":
        return F.cross_entropy(net(images, ["logits"])["logits"], labels,
                               label_smoothing=s["softmax_label_smoothing"])
    emb = net(images, ["embedding"])["embedding"]
    a, p, n = select_triplets(emb.detach(), labels, s["selection"], margin=s["margin"])
    return triplet_loss(emb, a, p, n, s["margin"])[0]


def _train(net, opt, stage, s, dataset, labels):
    """Run the epochs, timing the wait for each batch and the step; return the summed times."""
    loader, wait, compute, steps = _loader(stage, s, dataset, labels), 0.0, 0.0, 0
    net.train()
    for _ in range(s["softmax_epochs"] if stage == "softmax" else 1):
        for (images, targets), waited in timed(loader):
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = _objective(net, stage, s, images, targets)
            loss.backward()
            opt.step()
            loss.item()
            wait, compute, steps = wait + waited, compute + time.perf_counter() - start, steps + 1
    return {"wait": wait, "compute": compute, "steps": steps, "batch": len(images)}

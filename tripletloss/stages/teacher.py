"""Distillation targets for stage 1: a teacher network's descriptor of every training image, computed once.

Each training image `<root i>/<identity>/<stem>.<ext>` is matched with the teacher's copy of the same photo,
`<teacher root i>/<identity>/<stem>.<any image ext>` (e.g. its dlib_chip_150 alignment): the i-th root of
teacher_data_dir holds the copies of the i-th root of data_dir, since two roots may both hold an
`<identity>/<stem>` of different photos (celeba_subset and celeba_wide do). Descriptors of the copy and
of its mirror image are cached in `work_dir/teacher_cache/<key>.pt`, where the key hashes the teacher file's
bytes and every matched copy's path, size and modification time: changed data or another teacher gives another
key (computed afresh), never the old descriptors.
"""
import hashlib
import math
from pathlib import Path

import torch

from tripletloss.console import say
from tripletloss.data.folders import image_files, subfolders
from tripletloss.engine.checkpoint import load_checkpoint, save_atomic
from tripletloss.errors import ConfigError, UserError
from tripletloss.inference import compute_outputs, net_from_checkpoint
from tripletloss.resources import resolve_path

CACHE_DIR = "teacher_cache"


def copy_index(teacher_data_dir):
    """{(root number, identity, file stem): path} of the images under the ':'-joined teacher roots."""
    index = {}
    for number, root in enumerate(filter(None, teacher_data_dir.split(":"))):
        for identity in subfolders(root):
            for path in image_files(identity):
                index.setdefault((number, identity.name, path.stem), path)
    return index


def matching_copies(paths, data_dir, index):
    """The teacher's copy (a Path, or None) of each training image path under the ':'-joined `data_dir` roots:
    same root number, identity folder and file stem."""
    number_of = {str(Path(root)): n for n, root in enumerate(filter(None, data_dir.split(":")))}
    keys = [(number_of.get(str(Path(p).parent.parent)), Path(p).parent.name, Path(p).stem) for p in paths]
    return [index.get(key) for key in keys]


def cache_key(teacher_path, copies):
    """Hex key of the teacher file's bytes and each copy's path, size and mtime (None: no copy), in order."""
    digest = hashlib.sha256(Path(teacher_path).read_bytes())
    for copy in copies:
        stat = copy.stat() if copy else None
        digest.update((f"{copy}|{stat.st_size}|{stat.st_mtime_ns}\n" if copy else "-\n").encode())
    return digest.hexdigest()[:24]


def compute_descriptors(teacher_path, copies, device, num_workers=2, progress=True):
    """Run the teacher's `embedding` output on each copy and its mirror image.

    Returns (descriptors (2, N, D) float32 CPU, zero where a copy is None; has_copy (N,) bool).
    """
    ckpt = load_checkpoint(teacher_path)
    net = net_from_checkpoint(ckpt, teacher_path).to(device)
    found = [str(c) for c in copies if c]
    out = compute_outputs(net, found, ckpt["preprocess"], "embedding", device, with_mirror=True,
                          num_workers=num_workers, progress=progress).flatten(2)
    has_copy = torch.tensor([c is not None for c in copies], dtype=torch.bool)
    descriptors = torch.zeros(2, len(copies), out.shape[2])
    descriptors[:, has_copy] = out
    return descriptors, has_copy


def _manifest(copies):
    """The cache's record of which copy each training image had ("" for none)."""
    return [str(c) if c else "" for c in copies]


def _load_cache(path, copies):
    """The cached (descriptors, has_copy) at `path`; UserError when it was made for other images."""
    cached = torch.load(path, map_location="cpu", weights_only=True)
    if cached["copies"] != _manifest(copies):
        raise UserError(f"{path}: teacher cache made for other images than this run's (delete it to recompute)")
    return cached["descriptors"], cached["has_copy"]


def teacher_targets(settings, paths, device, progress=True):
    """The distillation targets of the training images `paths`: (descriptors (2, N, D), has_copy (N,)).

    Loaded from the cache when its key matches, else computed (progress bar) and cached. Says how many images
    have a teacher copy; raises UserError naming teacher_data_dir when none has.
    """
    teacher, roots = resolve_path(settings["teacher"]), settings["teacher_data_dir"]
    copies = matching_copies(paths, settings["data_dir"], copy_index(roots))
    found = sum(c is not None for c in copies)
    if not found:
        raise UserError(f"teacher_data_dir {roots}: none of the {len(paths)} training images has a copy there "
                        "(same identity folder and file name)")
    say(f"teacher: {found} of {len(paths)} training images have a copy in {roots}; "
        f"{len(paths) - found} get no distillation term")
    path = Path(settings["work_dir"]) / CACHE_DIR / f"{cache_key(teacher, copies)}.pt"
    if path.is_file():
        say(f"teacher: descriptors from {path}")
        return _load_cache(path, copies)
    say(f"teacher: computing descriptors with {teacher} (cached in {path})")
    descriptors, has_copy = compute_descriptors(teacher, copies, device, settings["num_workers"], progress)
    save_atomic({"copies": _manifest(copies), "descriptors": descriptors,
                 "has_copy": has_copy}, path)
    return descriptors, has_copy


def check_distill_width(net, width, net_setting):
    """ConfigError naming `net_setting` (e.g. "softmax_net x.yaml") unless the `distill` output of `net` is
    `width`-d (flattened), the teacher's descriptor width."""
    own = math.prod(net.blob_shapes[net.spec["outputs"]["distill"]])
    if own != width:
        raise ConfigError(f"{net_setting}: its 'distill' output is {own}-d but the teacher's descriptor is "
                          f"{width}-d")

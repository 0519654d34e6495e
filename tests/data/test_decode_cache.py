"""The decode cache (tripletloss.data.decode_cache) and the batches made from it: bit-identical to decoding every
epoch, never stale when files change, and never trusting what a killed build left."""
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tripletloss.data import decode_cache
from tripletloss.data.dataset import FaceDataset
from tripletloss.data.decode import read_image
from tripletloss.data.decode_cache import INDEX, cache_folder, open_decode_cache
from tripletloss.data.samplers import ShuffledBatches
from tripletloss.data.transforms import resized_square
from tripletloss.stages.batches import CachedImageBatches, ImageBatches, image_batches

PRE = {"size": 32, "resize": 40, "crop_fraction": 0.8, "mean": [127.5, 120.0, 100.0], "std": [128.0, 60.0, 50.0]}
CPU = torch.device("cpu")


def _faces(root, identities=3, images=5):
    """Write small random images (JPEG, PNG and grey PGM, sizes differing) in `root`/<identity>/; return
    (paths, labels)."""
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for ident in range(identities):
        (root / f"id{ident}").mkdir(parents=True)
        for i in range(images):
            ext, shape = [(".jpg", (50, 60, 3)), (".png", (45, 45, 3)), (".pgm", (56, 46))][i % 3]
            path = root / f"id{ident}" / f"{i}{ext}"
            cv2.imwrite(str(path), rng.integers(0, 256, shape, dtype=np.uint8))
            paths.append(str(path))
            labels.append(ident)
    return paths, labels


def _expected(paths):
    """What the cache must hold for `paths`: the resized squares of decoding each file now."""
    return np.stack([resized_square(read_image(p), PRE) for p in paths])


def test_cached_batches_equal_decoded_batches_bit_for_bit_with_a_bad_file(tmp_path):
    paths, labels = _faces(tmp_path / "faces")
    bad = paths[6]
    Path(bad).write_bytes(b"not an image")
    sampler = ShuffledBatches(len(paths), 5, seed=3)
    decoded = ImageBatches(FaceDataset(paths, labels, PRE), sampler, 0, CPU)
    cached = CachedImageBatches(open_decode_cache(paths, PRE, tmp_path / "work", progress=False), paths, labels,
                                sampler, PRE, True, CPU)
    seen_bad = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for a, b in zip(decoded, cached, strict=True):
            assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels) and a.bad_files == b.bad_files
            seen_bad += b.bad_files
    assert bad in seen_bad  # the replacement of an undecodable file was compared too


def test_cache_holds_decoded_rows_and_bad_flags(tmp_path):
    paths, _ = _faces(tmp_path / "faces", identities=1)
    (tmp_path / "faces" / "id0" / "0.jpg").write_bytes(b"")
    images, bad = open_decode_cache(paths, PRE, tmp_path / "work", progress=False)
    assert images.dtype == np.uint8 and images.shape == (5, 40, 40, 3)
    assert bad.tolist() == [True, False, False, False, False]
    assert np.array_equal(images[1:], _expected(paths[1:])) and not images[0].any()


def _count_decodes(monkeypatch):
    """Make decode_cache count the files it decodes; return the list of decoded paths."""
    decoded = []

    def counting_read(path):
        decoded.append(path)
        return read_image(path)
    monkeypatch.setattr(decode_cache, "read_image", counting_read)
    return decoded


def test_cache_notices_changed_added_and_removed_files(tmp_path, monkeypatch):
    paths, _ = _faces(tmp_path / "faces", identities=2)
    work, decoded = tmp_path / "work", _count_decodes(monkeypatch)
    open_decode_cache(paths, PRE, work, progress=False)
    assert len(decoded) == len(paths)
    decoded.clear()
    open_decode_cache(paths, PRE, work, progress=False)
    assert decoded == []  # warm: nothing decoded

    changed, size = paths[2], os.path.getsize(paths[2])  # a PGM: other pixels, same size, as an edit in place
    cv2.imwrite(changed, cv2.imread(changed, cv2.IMREAD_GRAYSCALE)[::-1])
    assert os.path.getsize(changed) == size
    added = tmp_path / "faces" / "id0" / "9.png"
    cv2.imwrite(str(added), np.full((30, 30, 3), 7, np.uint8))
    now = paths[:4] + [str(added)] + paths[5:]  # paths[4] removed
    images, _ = open_decode_cache(now, PRE, work, progress=False)
    assert sorted(decoded) == sorted([changed, str(added)])
    assert np.array_equal(images, _expected(now))
    assert len(list(cache_folder(work, PRE).glob("images-*.npy"))) == 1  # the old data file is gone


def test_cache_lives_in_the_work_dir_not_the_dataset(tmp_path):
    paths, _ = _faces(tmp_path / "faces", identities=1)
    before = sorted(p for p in (tmp_path / "faces").rglob("*"))
    open_decode_cache(paths, PRE, tmp_path / "work", progress=False)
    assert sorted(p for p in (tmp_path / "faces").rglob("*")) == before
    assert (cache_folder(tmp_path / "work", PRE) / INDEX).is_file()


def _slow_build(paths, work):
    """Build the cache of `paths` in `work` taking 3 s to decode each file (run in a forked process)."""
    def slow(path):
        time.sleep(3)
        return read_image(path)
    decode_cache.read_image = slow
    open_decode_cache(paths, PRE, work, progress=False)


def _kill_mid_build(paths, work):
    """Fork a slowed-down cache build of `paths` and SIGKILL it while it writes; return the cache folder."""
    proc = multiprocessing.get_context("fork").Process(target=_slow_build, args=(paths, work))
    proc.start()
    folder, deadline = cache_folder(work, PRE), time.monotonic() + 120
    while not list(folder.glob(".images-*")):
        assert time.monotonic() < deadline and proc.is_alive(), "the build never started writing"
        time.sleep(0.01)
    time.sleep(0.5)  # while it decodes (3 s a file)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert proc.exitcode == -signal.SIGKILL, "the build ended before it could be killed"
    return folder


def test_a_build_killed_midway_leaves_nothing_a_later_run_trusts(tmp_path):
    paths, _ = _faces(tmp_path / "faces")
    work = tmp_path / "work"
    folder = _kill_mid_build(paths, work)
    assert list(folder.glob(".images-*")) and not (folder / INDEX).exists()  # half a data file, not named
    images, _ = open_decode_cache(paths, PRE, work, progress=False)
    assert np.array_equal(images, _expected(paths))
    assert not list(folder.glob(".images-*"))  # the killed build's leftovers were removed

    cv2.imwrite(paths[0], np.zeros((20, 20, 3), np.uint8))  # a change, then a rebuild killed midway
    index = (folder / INDEX).read_text()
    _kill_mid_build(paths, work)
    assert (folder / INDEX).read_text() == index and (folder / json.loads(index)["data"]).is_file()
    images, _ = open_decode_cache(paths, PRE, work, progress=False)
    assert np.array_equal(images, _expected(paths))


@pytest.mark.parametrize("flip", [True, False])
def test_cached_batches_are_channels_last_normalised_crops(tmp_path, flip):
    paths, labels = _faces(tmp_path / "faces", identities=2)
    sampler = ShuffledBatches(len(paths), 4, seed=0)
    cached = CachedImageBatches(open_decode_cache(paths, PRE, tmp_path / "work", progress=False), paths, labels,
                                sampler, PRE, flip, CPU)
    images, labels_out, *_ = next(iter(cached))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert labels_out.tolist() == [labels[i] for i, _ in sampler.batches(0)[0]]


def test_building_the_cache_leaves_the_global_rng_alone(tmp_path):
    """A cold cache (built now) and a warm one must give the same run: building draws no global torch numbers."""
    paths, _ = _faces(tmp_path / "data")
    torch.manual_seed(0)
    before = torch.get_rng_state()
    open_decode_cache(paths, PRE, tmp_path / "work", num_workers=1, progress=False)
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("rotate, standardize", [(True, False), (False, True)])
def test_rotation_and_per_image_standardization_decode_every_epoch(tmp_path, rotate, standardize):
    """augment_batch does neither, so these runs take the per-image path (rotated as to_input does) even with
    decode_cache on, and build no cache."""
    paths, labels = _faces(tmp_path / "faces")
    settings = {"decode_cache": True, "random_rotate": rotate, "augment_flip": True, "num_workers": 0,
                "work_dir": str(tmp_path / "work")}
    pre = dict(PRE, standardize=standardize)
    batches = image_batches(paths, labels, pre, ShuffledBatches(len(paths), 5, seed=3), settings, CPU, False)
    assert isinstance(batches, ImageBatches) and batches.dataset.random_rotate is rotate
    assert not (tmp_path / "work").exists()


"""Benchmark the imported dlib ResNet as is: LFW-protocol verification accuracy on celeba_subset and CPU speed.

    python bench/dlib_backbone.py [--data ../shared/data/celeba_subset] [--plot runs/dlib_backbone.png]

Chips: dlib's HOG detector (upsample 1) + 5-point landmarks on each image, largest face, then dlib_chip_150;
images with no face fall back to the whole image resized to 150x150 (counted). Embeddings come from the network
parsed out of dlib_face_recognition_resnet_model_v1.dat (the same weights and graph as the import-dlib
checkpoint). Accuracy: splits/pairs_val.txt in LFW format, Euclidean distance between descriptors, 10 folds;
per fold the threshold best on the other nine is applied to it; prints mean +- std, plus the accuracy at dlib's
own fixed threshold 0.6. Speed: forward images/s on CPU at several batch sizes, ours vs dlib's
compute_face_descriptor on the same chips, and the max abs difference between the two descriptors.
"""
import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from tripletloss import ROOT
from tripletloss.dlib_import.chip import dlib_chip_150
from tripletloss.prepare.align import find_landmarks
from tripletloss.prepare.landmarks import RESNET_FILE, load_detector, load_predictor, model_file
from tripletloss.dlib_import.network import parse_dlib_resnet, reference_forward


def read_pairs(path):
    """LFW pairs file -> (folds, pairs): pairs is a list of (image a, image b, same) and folds[i] its fold index."""
    lines = Path(path).read_text().split("\n")
    num_folds, per_fold = map(int, lines[0].split())
    pairs = []
    for line in lines[1:]:
        f = line.split()
        if len(f) == 3:
            pairs.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[0]}/{f[0]}_{int(f[2]):04d}.jpg", True))
        elif len(f) == 4:
            pairs.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[2]}/{f[2]}_{int(f[3]):04d}.jpg", False))
    folds = np.repeat(np.arange(num_folds), 2 * per_fold)
    assert len(folds) == len(pairs), f"{path}: expected {len(folds)} pairs, found {len(pairs)}"
    return folds, pairs


def make_chips(root, names):
    """Chips (N,150,150,3) uint8 for the images `names` under root, and how many fell back to the whole image."""
    detector, predictor, chips, fallback = load_detector(), load_predictor(5), [], 0
    for name in tqdm(names, desc="chips", unit="img"):
        image = cv2.cvtColor(cv2.imread(str(root / name)), cv2.COLOR_BGR2RGB)
        points = find_landmarks(image, detector, predictor)
        if points is None:
            fallback += 1
            chips.append(cv2.resize(image, (150, 150), interpolation=cv2.INTER_AREA))
        else:
            chips.append(dlib_chip_150(image, points))
    return np.stack(chips), fallback


def embed(parsed, chips, batch=32):
    """128-d descriptors (N,128) of the chips through the parsed network."""
    mean = torch.tensor(parsed["input"]["mean"]).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(chips), batch), desc="embed", unit="batch"):
            x = (torch.from_numpy(chips[i:i + batch]).permute(0, 3, 1, 2).float() - mean) / 256
            out.append(reference_forward(parsed, x)["embedding"])
    return torch.cat(out).numpy()


def best_threshold(dist, same):
    """The distance threshold (same iff dist < t) with the highest accuracy on these pairs."""
    candidates = np.concatenate([[0.0], np.sort(dist) + 1e-6])
    acc = [np.mean((dist < t) == same) for t in candidates]
    return candidates[int(np.argmax(acc))]


def ten_fold(dist, same, folds):
    """Held-out accuracy per fold, each with the threshold chosen on the other folds; also those thresholds."""
    accs, thresholds = [], []
    for k in np.unique(folds):
        t = best_threshold(dist[folds != k], same[folds != k])
        accs.append(np.mean((dist[folds == k] < t) == same[folds == k]))
        thresholds.append(t)
    return np.array(accs), np.array(thresholds)


def time_forward(parsed, chips, recognizer):
    """Rows (what, batch, images/s) for our forward and dlib's compute_face_descriptor on the same chips."""
    rows = []
    mean = torch.tensor(parsed["input"]["mean"]).view(1, 3, 1, 1)
    for batch in (1, 16, 64):
        x = (torch.from_numpy(chips[:batch]).permute(0, 3, 1, 2).float() - mean) / 256
        with torch.no_grad():
            reference_forward(parsed, x)
            reps = max(1, 64 // batch)
            start = time.perf_counter()
            for _ in range(reps):
                reference_forward(parsed, x)
        rows.append(("ours (torch, CPU)", batch, reps * batch / (time.perf_counter() - start)))
    for batch in (1, 16, 64):
        sample = list(chips[:batch])
        recognizer.compute_face_descriptor(sample)
        reps = max(1, 64 // batch)
        start = time.perf_counter()
        for _ in range(reps):
            recognizer.compute_face_descriptor(sample)
        rows.append(("dlib compute_face_descriptor", batch, reps * batch / (time.perf_counter() - start)))
    return rows


def plot(dist, same, threshold, path):
    """Save a histogram of matched / mismatched distances with the mean chosen threshold to path (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, max(1.2, dist.max()), 60)
    ax.hist(dist[same], bins, alpha=0.6, label="same identity")
    ax.hist(dist[~same], bins, alpha=0.6, label="different identities")
    ax.axvline(threshold, color="k", ls="--", label=f"mean 10-fold threshold {threshold:.3f}")
    ax.set_xlabel("Euclidean distance between dlib ResNet descriptors")
    ax.set_ylabel("pairs")
    ax.set_title("celeba_subset pairs_val.txt, imported dlib ResNet")
    ax.legend()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def main():
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "celeba_subset"))
    parser.add_argument("--plot", default=str(ROOT / "runs" / "dlib_backbone.png"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    import dlib
    dat = model_file(RESNET_FILE)
    parsed = parse_dlib_resnet(dat.read_bytes(), str(dat))
    root = Path(args.data)
    folds, pairs = read_pairs(root / "splits" / "pairs_val.txt")
    names = sorted({p for a, b, _ in pairs for p in (a, b)})
    chips, fallback = make_chips(root, names)
    emb = dict(zip(names, embed(parsed, chips)))
    dist = np.array([np.linalg.norm(emb[a] - emb[b]) for a, b, _ in pairs])
    same = np.array([s for _, _, s in pairs])
    accs, thresholds = ten_fold(dist, same, folds)
    print(f"\n{len(pairs)} pairs, {len(names)} images, {fallback} without a detected face (whole image used)")
    print(f"10-fold accuracy: {100 * accs.mean():.2f} +- {100 * accs.std():.2f} %  "
          f"(thresholds {thresholds.min():.3f}..{thresholds.max():.3f})")
    print(f"accuracy at dlib's fixed threshold 0.6: {100 * np.mean((dist < 0.6) == same):.2f} %")
    recognizer = dlib.face_recognition_model_v1(str(dat))
    check = chips[:64]
    ref = np.array(recognizer.compute_face_descriptor(list(check)))
    print(f"max abs diff vs dlib's descriptor on {len(check)} chips: "
          f"{np.abs(embed(parsed, check) - ref).max():.2e}")
    rows = time_forward(parsed, chips, recognizer)
    dlib_speed = {b: s for what, b, s in rows if what.startswith("dlib")}
    print(f"\n| {'forward (2 CPU threads)':<30} | batch | images/s | vs dlib |\n|---|---|---|---|")
    for what, batch, speed in rows:
        print(f"| {what:<30} | {batch:>5} | {speed:8.1f} | {speed / dlib_speed[batch]:6.2f}x |")
    plot(dist, same, thresholds.mean(), args.plot)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()

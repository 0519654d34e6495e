"""Benchmark the imported dlib ResNet as is: LFW-protocol verification accuracy on celeba_subset and CPU speed.

    python bench/dlib_backbone.py [--data ../shared/data/celeba_subset] [--plot runs/dlib_backbone.png]

Chips: dlib's HOG detector (upsample 1) + 5-point landmarks on each image, largest face, then dlib_chip_150;
images with no face fall back to the whole image resized to 150x150 (counted). Embeddings come from the network
parsed out of dlib_face_recognition_resnet_model_v1.dat (the same weights and graph as the import-dlib
checkpoint). Accuracy: splits/pairs_val.txt through the project's LFW protocol (tripletloss.evaluation), plus the accuracy at
dlib's own fixed threshold 0.6 on the raw descriptor distance. Speed: forward images/s on CPU at several batch sizes, ours vs dlib's
compute_face_descriptor on the same chips, and the max abs difference between the two descriptors.
"""
import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tripletloss import ROOT  # noqa: E402
from tripletloss.dlib_import.network import parse_dlib_resnet, reference_forward  # noqa: E402
from tripletloss.evaluation.protocol import evaluate_folds  # noqa: E402
from tripletloss.evaluation.verification import resolve_pairs  # noqa: E402
from tripletloss.prepare.align import find_landmarks  # noqa: E402
from tripletloss.prepare.chip import dlib_chip_150  # noqa: E402
from tripletloss.prepare.detectors import load_detector  # noqa: E402
from tripletloss.prepare.landmarks import RESNET_FILE, load_predictor, model_file  # noqa: E402


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
    """Save a histogram of matched / mismatched distances with a vertical line at `threshold` to path (PNG)."""
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
    paths1, paths2, same, folds, _ = resolve_pairs(root, root / "splits" / "pairs_val.txt")
    names = sorted({str(p.relative_to(root)) for p in paths1 + paths2})
    chips, fallback = make_chips(root, names)
    emb = dict(zip(names, embed(parsed, chips)))
    e1, e2 = (np.array([emb[str(p.relative_to(root))] for p in paths]) for paths in (paths1, paths2))
    metrics, _ = evaluate_folds(e1, e2, same, folds)
    dist = np.linalg.norm(e1 - e2, axis=1)
    print(f"\n{len(same)} pairs, {len(names)} images, {fallback} without a detected face (whole image used)")
    print(f"10-fold accuracy: {100 * metrics['accuracy']:.2f} +- {100 * metrics['accuracy_std']:.2f} %  "
          f"(AUC {metrics['auc']:.4f}, EER {metrics['eer']:.4f})")
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
    plot(dist, same, 0.6, args.plot)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()

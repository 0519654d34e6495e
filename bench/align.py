"""Alignment throughput: images per second of `align_dataset` per face-finding mode and worker count.

Usage: python bench/align.py [--data ../shared/data/celeba_subset] [--images 300] [--workers 1 2]
                             [--modes hog cnn auto auto+fallback] [--landmarks innerEyesAndBottomLip] [--size 96]
--images 0 aligns the whole dataset (6,074 images for celeba_subset). A mode is a `--detector` (hog, cnn, auto),
"+fallback" adds `--fallback center`. The table's "aligned" column is the share of images with an output,
"fallback" the share of those from the centred fallback box. Outputs go to a temporary folder that is removed
afterwards. Times include starting the workers and loading dlib's models (about 0.6 s per process), as a user's
run would. CPU ms/img (this process and its workers) does not depend on other load on the machine; img/s does.
"""
import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tripletloss import ROOT
from tripletloss.data.folders import identity_dirs, image_files
from tripletloss.prepare.align import AlignOptions, align_dataset
from tripletloss.prepare.templates import TEMPLATES, get_template


def subset(data, raw, images):
    """Symlink `images` images spread evenly over `data` (0 = all) into raw/<identity>/; return the count."""
    files = [f for d in identity_dirs(data) for f in image_files(d)]
    if images:
        files = files[:: max(1, len(files) // images)][:images]
    for f in files:
        (raw / f.parent.name).mkdir(parents=True, exist_ok=True)
        (raw / f.parent.name / f.name).symlink_to(f.resolve())
    return len(files)


def cpu_seconds():
    """User + system CPU seconds used so far by this process and its finished children."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def main():
    """Parse the options, time one alignment run per worker count, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "celeba_subset"))
    parser.add_argument("--images", type=int, default=300, help="images to align (0 = all)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", default=["hog"], help="hog, cnn, auto, each optionally +fallback")
    parser.add_argument("--landmarks", default="innerEyesAndBottomLip", choices=sorted(TEMPLATES))
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        count = subset(Path(args.data), Path(tmp) / "raw", args.images)
        print(f"{count} images from {args.data}, {args.landmarks} at {args.size} px\n")
        print(f"{'mode':>13} {'workers':>7} {'seconds':>8} {'img/s':>7} {'vs 1st':>7} {'CPU ms/img':>10} "
              f"{'aligned':>8} {'fallback':>8}")
        base = None
        for k, (mode, workers) in enumerate((m, w) for m in args.modes for w in args.workers):
            options = mode_options(mode, get_template(args.landmarks), args.size)
            start, cpu = time.perf_counter(), cpu_seconds()
            summary = align_dataset(Path(tmp) / "raw", Path(tmp) / f"out{k}", options, workers=workers,
                                    progress=False)
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
            rate = count / seconds
            base = base or rate
            print(f"{mode:>13} {workers:>7} {seconds:>8.1f} {rate:>7.2f} {rate / base:>6.2f}x "
                  f"{1000 * cpu / count:>10.1f} {100.0 * summary.aligned / count:>7.2f}% "
                  f"{100.0 * len(summary.fallbacks) / count:>7.2f}%")


def mode_options(mode, template, size):
    """AlignOptions for a mode name: a detector kind, optionally with "+fallback" (the centred box)."""
    detector, _, fallback = mode.partition("+")
    return AlignOptions(template, size=size, detector=detector, fallback="center" if fallback else "none")

if __name__ == "__main__":
    main()

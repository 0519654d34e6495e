"""Inference input: raw photos aligned in memory exactly as `align` aligns them (same worker function and
options object), so a model sees faces laid out like its training faces. Photos without a face are reported by
name and counted, never embedded raw."""
import sys

from tqdm import tqdm

from tripletloss.prepare.align import AlignOptions, face_of, run_workers
from tripletloss.prepare.templates import get_template


def align_options(alignment, **extra):
    """Return the AlignOptions of an alignment record {template, size, margin} for inference: images that are
    already size x size are taken as aligned (keep_aligned). `extra` sets further AlignOptions fields."""
    return AlignOptions(template=get_template(alignment["template"]), size=int(alignment["size"]),
                        margin=int(alignment.get("margin", 0)), keep_aligned=True, **extra)


class FaceAligner:
    """Turns image files into aligned RGB faces with one AlignOptions and `workers` processes."""

    def __init__(self, options, workers=1):
        self.options, self.workers = options, workers

    def faces(self, paths, progress=True):
        """Return a list with, per path, the aligned RGB uint8 face or None (no face / unreadable).

        Each failure is printed to stderr with its reason, then how many of the images failed.
        """
        paths = [str(p) for p in paths]
        found = dict((src, (face, reason)) for src, face, reason in tqdm(
            run_workers(face_of, sorted(set(paths)), self.options, min(self.workers, len(paths))),
            total=len(set(paths)), desc="align", unit="img", disable=not progress, dynamic_ncols=True))
        failed = sorted(src for src, (face, _) in found.items() if face is None)
        for src in failed:
            print(f"left out: {src} ({found[src][1]})", file=sys.stderr)  # no face, or not decodable
        for src, (face, note) in sorted(found.items()):
            if face is not None and note:  # aligned from the --fallback box, not from a detected face
                print(f"{note}: {src}", file=sys.stderr)
        if failed:
            print(f"{len(failed)} of {len(found)} images without a usable face: left out", file=sys.stderr)
        return [found[p][0] for p in paths]

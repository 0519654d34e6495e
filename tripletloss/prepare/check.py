"""Dataset health check: find files under ROOT/<identity>/ that a trainer cannot use, and count the rest.

A file is bad when it is not an image by name (.DS_Store, notes, ...), empty, truncated (JPEG without its EOI
marker, PNG without its IEND chunk), undecodable by OpenCV, a 4-component (CMYK/YCCK) JPEG, or of more than
8 bits per channel. `quarantine` moves bad files aside, keeping <identity>/<file>; nothing is deleted.
"""
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from tripletloss.data.decode import BadImageError, decode_bytes, jpeg_frame
from tripletloss.data.folders import IMAGE_EXTS, identity_dirs, listing, subfolders

JPEG_MAGIC = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"IEND\xaeB`\x82"


@dataclass
class DatasetReport:
    """Result of scan_dataset: good-image count per identity, bad files as (path, reason), ignored folders."""
    root: Path
    counts: dict = field(default_factory=dict)
    bad: list = field(default_factory=list)
    ignored: list = field(default_factory=list)

    @property
    def num_images(self):
        """Total number of good images."""
        return sum(self.counts.values())

    def summary(self):
        """Return a multi-line human-readable summary (identities, images, per-identity count spread)."""
        values = sorted(self.counts.values()) or [0]
        return (f"{self.root}: {len(self.counts)} identities, {self.num_images} good images, "
                f"{len(self.bad)} bad files\n"
                f"images per identity: min {values[0]}, median {statistics.median(values):g}, "
                f"max {values[-1]}; {sum(v == 1 for v in values)} identities with 1 image, "
                f"{sum(v == 0 for v in values)} with none"
                + (f"\nignored folders without image files: {', '.join(self.ignored)}" if self.ignored else ""))


def jpeg_components(data):
    """Return the component count of a JPEG's first start-of-frame segment, or None if there is none."""
    pos = jpeg_frame(data)
    return data[pos + 9] if pos is not None and pos + 9 < len(data) else None


def container_problem(data):
    """Return why JPEG/PNG bytes are truncated or CMYK, or None when the container looks complete."""
    if data.startswith(JPEG_MAGIC):
        if not data.rstrip(b"\x00\r\n ").endswith(JPEG_EOI):
            return "truncated JPEG (no end-of-image marker)"
        if jpeg_components(data) == 4:
            return "CMYK/YCCK JPEG (4 components)"
    elif data.startswith(PNG_MAGIC) and not data.rstrip(b"\x00").endswith(PNG_IEND):
        return "truncated PNG (no IEND chunk)"
    return None


def check_file(path):
    """Return the reason a file is unusable as a training image, or None when it is a good 8-bit image."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTS or path.name.startswith("."):
        return f"not an image file ({path.name})"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not data:
        return "zero-byte file"
    problem = container_problem(data)
    if problem:
        return problem
    try:
        image = decode_bytes(np.frombuffer(data, np.uint8), path, cv2.IMREAD_UNCHANGED)
    except BadImageError as exc:
        return exc.reason.split(" (")[0] if exc.reason.startswith("cannot be decoded") else exc.reason
    if image.dtype != np.uint8:
        return f"{image.dtype.itemsize * 8}-bit image ({image.dtype}; 8-bit needed)"
    return None


def scan_dataset(root, progress=False):
    """Check every file in every identity folder of `root`; return a DatasetReport (counts + bad files)."""
    identities = identity_dirs(root)
    report = DatasetReport(root=Path(root), ignored=[d.name for d in subfolders(root) if d not in identities])
    for ident in tqdm(identities, desc="check", unit="identity", disable=not progress):
        good = 0
        for path in sorted(p for p in listing(ident) if p.is_file()):
            reason = check_file(path)
            if reason:
                report.bad.append((path, reason))
            else:
                good += 1
        report.counts[ident.name] = good
    return report


def quarantine_dir(root):
    """Return the quarantine folder for dataset `root`: a sibling named <root name>_quarantine."""
    root = Path(root).resolve()
    return root.parent / f"{root.name}_quarantine"


def quarantine(report):
    """Move every bad file of `report` to quarantine_dir/<identity>/<file> (never overwriting); return targets."""
    target_root = quarantine_dir(report.root)
    moved = []
    for path, _ in report.bad:
        target = free_path(target_root / path.parent.name / path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        moved.append(target)
    return moved


def free_path(path):
    """Return `path`, or `path` with a .1, .2, ... suffix added when that name is taken."""
    path = Path(path)
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate

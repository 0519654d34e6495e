"""LFW-format pairs files: reading, writing, making them for a dataset, and mapping image numbers to files.

Format: a first line "K<TAB>N" (K folds, N pairs of each kind per fold; a single "N" means one fold), then for
each fold N matched lines "name<TAB>i<TAB>j" followed by N mismatched lines "name1<TAB>i<TAB>name2<TAB>j".
Image numbers are 1-based positions in the identity folder's file list sorted by file name
(tripletloss.data.folders.image_files); in LFW-named folders (name/name_0001.jpg, ...) number i is the file
name_000i.* itself (image_for_index).
"""
import random
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from tripletloss.atomic import write_atomic
from tripletloss.data.folders import image_files
from tripletloss.errors import UserError


@dataclass(frozen=True)
class Pair:
    """One pairs.txt line: fold number (0-based), two identities and their 1-based image numbers."""
    fold: int
    name1: str
    i: int
    name2: str
    j: int

    @property
    def same(self):
        """True for a matched pair (both images of one identity)."""
        return self.name1 == self.name2


def image_for_index(identity_dir, i, files=None):
    """Return the Path of image number `i` in `identity_dir` (`files`: its image_files, if already listed).

    LFW-named folders (<name>/<name>_0001.jpg, ...) are looked up by name, so a file missing from an aligned
    copy is reported rather than silently shifting the numbering; other folders by 1-based sorted position.
    """
    files = image_files(identity_dir) if files is None else files
    lfw_name = f"{Path(identity_dir).name}_{i:04d}"
    if any(f.stem.startswith(f"{Path(identity_dir).name}_") and f.stem[-4:].isdigit() for f in files):
        named = [f for f in files if f.stem == lfw_name]
        if not named:
            raise UserError(f"{identity_dir} has no image {lfw_name}.* (LFW naming)")
        return named[0]
    if not 1 <= i <= len(files):
        raise UserError(f"{identity_dir} has {len(files)} images; pairs file asks for image {i}")
    return files[i - 1]


def plain_name(name, where):
    """Raise UserError at `where` unless `name` is a plain identity folder name: not empty, '.', '..', and no path
    separator (a pairs entry never reaches outside the dataset folder) or tab/line break (the file's own
    separators). Returns `name`."""
    if name in ("", ".", "..") or any(c in name for c in "/\\\t\n\r"):
        raise UserError(f"{where}: identity name {name!r} is not a plain folder name")
    return name


def read_pairs(path):
    """Parse an LFW-format pairs file; return its Pairs in file order (fold numbers from the layout).

    The header is '<folds> <pairs per fold>' (pairs.txt, View 2) or a single '<pairs>' (one fold, as in View 1's
    pairsDevTrain.txt); fields are separated by tabs (names may then hold spaces), or by spaces in a file
    without tabs.
    """
    text = Path(path).read_text()
    sep = "\t" if "\t" in text else None
    lines = [[field.strip() for field in line.split(sep)] for line in text.splitlines() if line.strip()]
    try:
        header = lines[0]
        folds, n = (1, int(header[0])) if len(header) == 1 else (int(v) for v in header)
    except (IndexError, ValueError):
        raise UserError(f"{path}: first line must be '<folds><TAB><pairs per fold>' or '<pairs>'") from None
    if len(lines) - 1 != folds * 2 * n:
        raise UserError(f"{path}: header says {folds}x{2 * n} pairs but the file has {len(lines) - 1} lines")
    pairs = []
    for k, fields in enumerate(lines[1:]):
        fold, matched = divmod(k, 2 * n)[0], k % (2 * n) < n
        try:
            for name in (fields[0], fields[2]) if not matched and len(fields) == 4 else fields[:1]:
                plain_name(name, f"{path} line {k + 2}")
            if matched and len(fields) == 3:
                pairs.append(Pair(fold, fields[0], int(fields[1]), fields[0], int(fields[2])))
            elif not matched and len(fields) == 4:
                pairs.append(Pair(fold, fields[0], int(fields[1]), fields[2], int(fields[3])))
            else:
                raise ValueError
        except ValueError:
            kind = "name i j" if matched else "name1 i name2 j"
            raise UserError(f"{path} line {k + 2}: expected a {kind} line, got {chr(9).join(fields)!r}") from None
    return pairs


def write_pairs(path, pairs):
    """Write Pairs (any order) as an LFW pairs file, atomically; each fold needs the same N matched and N mismatched."""
    by_fold = [list(g) for _, g in groupby(sorted(pairs, key=lambda p: p.fold), key=lambda p: p.fold)]
    n = len(by_fold[0]) // 2 if by_fold else 0
    lines = [f"{len(by_fold)}\t{n}"]
    for fold in by_fold:
        matched = [p for p in fold if p.same]
        mismatched = [p for p in fold if not p.same]
        for name in {name for p in fold for name in (p.name1, p.name2)}:
            plain_name(name, path)
        if len(matched) != n or len(mismatched) != n:
            raise ValueError(f"fold {fold[0].fold}: {len(matched)} matched, {len(mismatched)} mismatched, want {n}")
        lines += [f"{p.name1}\t{p.i}\t{p.j}" for p in matched]
        lines += [f"{p.name1}\t{p.i}\t{p.name2}\t{p.j}" for p in mismatched]
    write_atomic(path, "\n".join(lines) + "\n")


def fold_partition(names, num_folds, rng):
    """Shuffle `names` with `rng` and deal them round-robin into `num_folds` identity-disjoint folds."""
    names = sorted(names)
    rng.shuffle(names)
    return [sorted(names[k::num_folds]) for k in range(num_folds)]


def pair_capacity(counts):
    """Return (distinct matched, distinct mismatched) pair counts possible among {identity: image count}."""
    values = list(counts.values())
    total = sum(values)
    return sum(n * (n - 1) // 2 for n in values), (total * total - sum(n * n for n in values)) // 2


def sample_fold(fold, counts, n, rng):
    """Draw `n` distinct matched and `n` distinct mismatched Pairs among the identities of one fold."""
    names = sorted(counts)
    weights = [counts[a] * (counts[a] - 1) for a in names]
    matched, mismatched = set(), set()
    while len(matched) < n:
        a = rng.choices(names, weights)[0]
        i, j = sorted(rng.sample(range(1, counts[a] + 1), 2))
        matched.add(Pair(fold, a, i, a, j))
    while len(mismatched) < n:
        a, b = sorted(rng.sample(names, 2))
        mismatched.add(Pair(fold, a, rng.randint(1, counts[a]), b, rng.randint(1, counts[b])))
    return sorted(matched, key=_order) + sorted(mismatched, key=_order)


def _order(p):
    return p.name1, p.i, p.name2, p.j


def make_pairs(counts, num_pairs=300, num_folds=10, seed=0):
    """Make identity-disjoint LFW-style folds of pairs from {identity: image count}; return a list of Pairs.

    Identities with fewer than 2 images are left out. With fewer than 2*num_folds identities the fold count
    drops (each fold needs two identities); the pairs per fold N is num_pairs, lowered to what every fold can
    supply without repeating a pair.
    """
    usable = {k: v for k, v in counts.items() if v >= 2}
    folds = min(num_folds, len(usable) // 2)
    if folds < 2:
        raise UserError(f"pairs need at least 4 identities with >= 2 images, for two folds (have {len(usable)})")
    rng = random.Random(seed)
    groups = [{name: usable[name] for name in g} for g in fold_partition(usable, folds, rng)]
    n = min([num_pairs] + [c for g in groups for c in pair_capacity(g)])
    return [p for k, g in enumerate(groups) for p in sample_fold(k, g, n, rng)]

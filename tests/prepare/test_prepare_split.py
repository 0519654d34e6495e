"""prune and split: identities moved aside, identity-disjoint train/val and folds, LFW pairs that parse back."""
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripletloss.cli import main
from tripletloss.data.folders import image_counts
from tripletloss.data.pairs import (
    Pair,
    image_for_index,
    make_pairs,
    read_pairs,
    write_pairs,
)
from tripletloss.errors import UserError
from tripletloss.prepare.prune import prune_dataset
from tripletloss.prepare.split import split_dataset


def make_dataset(root, counts):
    """Create root/<identity>/<identity>_000k.jpg placeholder files for {identity: count}."""
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for k in range(1, n + 1):
            (root / name / f"{name}_{k:04d}.jpg").write_bytes(b"x")
    return root


COUNTS = {f"id{k:02d}": 1 + (k * 7) % 13 for k in range(40)}


def check_pairs(pairs, counts):
    """Assert the structural guarantees of a pairs list: same/different identities, ranges, disjoint folds."""
    folds = defaultdict(set)
    for p in pairs:
        assert 1 <= p.i <= counts[p.name1] and 1 <= p.j <= counts[p.name2]
        if p.same:
            assert p.i != p.j
        folds[p.fold] |= {p.name1, p.name2}
    names = list(folds.values())
    assert all(a.isdisjoint(b) for k, a in enumerate(names) for b in names[k + 1:])
    assert len(set(pairs)) == len(pairs)


def test_prune_dry_run_lists_and_prune_moves_aside(tmp_path):
    root = make_dataset(tmp_path / "faces", COUNTS)
    small = {name for name, n in COUNTS.items() if n < 10}
    listed = prune_dataset(root, 10, dry_run=True)
    assert {d.name for d, _ in listed} == small and image_counts(root) == COUNTS
    prune_dataset(root, 10)
    assert set(image_counts(root)) == set(COUNTS) - small
    assert set(image_counts(tmp_path / "faces_pruned")) == small


def test_prune_cli_default_min_images(tmp_path, capsys):
    root = make_dataset(tmp_path / "faces", COUNTS)
    with pytest.raises(SystemExit):
        main(["prune", str(root), "--dry-run"])
    out = capsys.readouterr().out
    assert f"would move {sum(n < 10 for n in COUNTS.values())} identities" in out


def test_split_symlinks_are_identity_disjoint_with_pairs(tmp_path):
    root = make_dataset(tmp_path / "faces", COUNTS)
    with pytest.raises(SystemExit):
        main(["split", str(root), str(tmp_path / "out"), "--val-ratio", "0.5", "--seed", "3"])
    train = {p.name for p in (tmp_path / "out" / "train").iterdir()}
    val = {p.name for p in (tmp_path / "out" / "val").iterdir()}
    assert train.isdisjoint(val) and train | val == set(COUNTS) and len(val) == 20
    assert all(COUNTS[name] >= 2 for name in val)
    for part, names in (("train", train), ("val", val)):
        assert all((tmp_path / "out" / part / n).resolve() == (root / n).resolve() for n in names)
    pairs = read_pairs(tmp_path / "out" / "pairs.txt")
    assert {p.name1 for p in pairs} | {p.name2 for p in pairs} <= val
    assert {p.fold for p in pairs} == set(range(10))
    check_pairs(pairs, COUNTS)
    header = (tmp_path / "out" / "pairs.txt").read_text().splitlines()[0]
    n = int(header.split("\t")[1])
    assert header.startswith("10\t") and len(pairs) == 20 * n
    assert all(sum(p.same for p in pairs if p.fold == k) == n for k in range(10))


def test_split_lists_mode_and_small_val_lowers_pairs(tmp_path):
    counts = {"a": 2, "b": 2, "c": 3, "d": 1, "e": 5, "f": 2}
    root = make_dataset(tmp_path / "faces", counts)
    with pytest.raises(UserError, match="at least 4 identities"):  # 3 val identities: one fold, no protocol
        split_dataset(root, tmp_path / "few", val_ratio=0.5, seed=1, mode="lists")
    train, val, pairs = split_dataset(root, tmp_path / "out", val_ratio=0.7, seed=1, mode="lists")
    assert (tmp_path / "out" / "train.txt").read_text().split() == train
    assert (tmp_path / "out" / "val.txt").read_text().split() == val
    assert "d" in train and len(val) == 4
    assert len({p.fold for p in pairs}) == 2
    assert read_pairs(tmp_path / "out" / "pairs.txt") == pairs
    check_pairs(pairs, counts)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=2, max_size=40), st.integers(1, 50), st.integers(1, 10))
def test_make_pairs_properties(sizes, num_pairs, num_folds):
    counts = {f"p{k}": n for k, n in enumerate(sizes)}
    if min(num_folds, sum(n >= 2 for n in sizes) // 2) < 2:
        with pytest.raises(UserError):
            make_pairs(counts, num_pairs, num_folds)
        return
    pairs = make_pairs(counts, num_pairs, num_folds, seed=5)
    check_pairs(pairs, counts)
    folds = {p.fold for p in pairs}
    assert 2 <= len(folds) <= num_folds
    per_fold = len(pairs) // len(folds) // 2
    assert 1 <= per_fold <= num_pairs
    assert all(sum(p.same for p in pairs if p.fold == k) == per_fold for k in folds)


def test_write_read_roundtrip_and_bad_files(tmp_path):
    pairs = [Pair(0, "a", 1, "a", 2), Pair(0, "a", 2, "b", 1), Pair(1, "c", 1, "c", 3), Pair(1, "c", 2, "d", 4)]
    write_pairs(tmp_path / "p.txt", pairs)
    assert (tmp_path / "p.txt").read_text().splitlines() == ["2\t1", "a\t1\t2", "a\t2\tb\t1", "c\t1\t3",
                                                             "c\t2\td\t4"]
    assert read_pairs(tmp_path / "p.txt") == pairs
    (tmp_path / "bad.txt").write_text("2\t1\na\t1\t2\n")
    with pytest.raises(UserError, match="header says"):
        read_pairs(tmp_path / "bad.txt")
    spaced = [Pair(0, "John Smith", 1, "John Smith", 2), Pair(0, "John Smith", 1, "Ann Lee", 3)]
    write_pairs(tmp_path / "spaced.txt", spaced)  # names with spaces survive in tab-separated files
    assert read_pairs(tmp_path / "spaced.txt") == spaced
    (tmp_path / "dev.txt").write_text("2\na 1 2\nb 1 3\na 1 b 2\nc 4 d 1\n")  # View 1 header, spaces
    assert read_pairs(tmp_path / "dev.txt") == [Pair(0, "a", 1, "a", 2), Pair(0, "b", 1, "b", 3),
                                                Pair(0, "a", 1, "b", 2), Pair(0, "c", 4, "d", 1)]
    (tmp_path / "bad.txt").write_text("1\t1\na\t1\tb\t2\nb\t1\t2\n")
    with pytest.raises(UserError, match="line 2: expected a name i j line"):
        read_pairs(tmp_path / "bad.txt")


def test_shared_pairs_val_parses_and_maps_to_lfw_file_names(celeba_dir):
    pairs = read_pairs(celeba_dir / "splits" / "pairs_val.txt")
    assert len(pairs) == 10 * 200 and sum(p.same for p in pairs) == 1000
    counts = image_counts(celeba_dir)
    check_pairs(pairs, counts)
    for p in pairs[:: 97]:
        assert image_for_index(celeba_dir / p.name2, p.j).name == f"{p.name2}_{p.j:04d}.jpg"
    with pytest.raises(UserError, match=f"has no image {pairs[0].name1}_0099"):
        image_for_index(celeba_dir / pairs[0].name1, 99)


def test_lfw_named_folder_with_a_gap_is_not_renumbered(tmp_path):
    ident = tmp_path / "ann"
    ident.mkdir()
    for n in (1, 3):  # ann_0002 is missing, as after an alignment that found no face in it
        (ident / f"ann_{n:04d}.png").write_bytes(b"")
    assert image_for_index(ident, 3).name == "ann_0003.png"
    with pytest.raises(UserError, match="no image ann_0002"):
        image_for_index(ident, 2)


def test_prune_clash_moves_nothing(tmp_path):
    root = make_dataset(tmp_path / "faces", {"a": 1, "b": 1, "c": 12})
    (tmp_path / "faces_pruned" / "b").mkdir(parents=True)
    with pytest.raises(UserError, match="faces_pruned/b already exists"):
        prune_dataset(root, min_images=10)
    assert sorted(image_counts(root)) == ["a", "b", "c"]

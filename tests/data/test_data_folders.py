"""Identity selection when scanning joined roots: exclusion lists and a minimum image count per identity."""
import pytest

from tripletloss.data.folders import scan_folders
from tripletloss.errors import UserError


def make_root(root, counts):
    """Create root/<identity>/<identity>_000i.png files (empty bytes suffice for scanning); return the root."""
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            (root / name / f"{name}_{i + 1:04d}.png").write_bytes(b"")
    return root


def test_min_images_counts_after_joining_roots_and_exclude_drops_names(tmp_path):
    a = make_root(tmp_path / "a", {"x": 1, "y": 3, "v": 4})
    b = make_root(tmp_path / "b", {"x": 1, "z": 1})
    paths, labels, names = scan_folders(f"{a}:{b}", exclude=["v"], min_images=2)
    assert names == ["x", "y"]          # x has 1 + 1 images once joined; z has 1; v is excluded
    assert labels == [0, 0, 1, 1, 1]
    assert [p.split("/")[-2] for p in paths] == ["x", "x", "y", "y", "y"]


def test_nothing_left_is_a_user_error(tmp_path):
    a = make_root(tmp_path / "a", {"x": 1})
    with pytest.raises(UserError, match="no identity"):
        scan_folders(str(a), min_images=2)

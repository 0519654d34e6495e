"""`check` on a folder with planted bad files: every one found, no good file flagged, --fix moves them aside."""
import cv2
import numpy as np
import pytest
from PIL import Image

from tripletloss.cli import main
from tripletloss.prepare.check import (
    check_file,
    jpeg_components,
    quarantine_dir,
    scan_dataset,
)


def face_like(seed, size=64):
    """A random smooth 8-bit colour image."""
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (size, size))


def encode(ext, image):
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


@pytest.fixture
def planted(tmp_path):
    """A dataset with good images and one of each kind of bad file; returns (root, good paths, bad paths)."""
    root = tmp_path / "faces"
    a, b = root / "alice", root / "bob"
    a.mkdir(parents=True)
    b.mkdir()
    good = {a / "a1.jpg": encode(".jpg", face_like(1)), a / "a2.png": encode(".png", face_like(2)),
            b / "b1.JPG": encode(".jpg", face_like(3)), b / "b2.pgm": encode(".pgm", face_like(4)[..., 0])}
    jpg = encode(".jpg", face_like(5))
    bad = {a / "zero.jpg": b"", a / "truncated.jpg": jpg[: len(jpg) // 2], a / ".DS_Store": b"\x00\x00\x00\x01Bud1",
           b / "notes.jpg": b"this is not an image\n", b / "readme.txt": b"hello\n",
           b / "deep.png": encode(".png", (face_like(6).astype(np.uint16) * 257)),
           b / "cut.png": encode(".png", face_like(7))[:-30]}
    for path, data in {**good, **bad}.items():
        path.write_bytes(data)
    Image.new("CMYK", (32, 32), (10, 200, 30, 0)).save(b / "cmyk.jpg", "JPEG")
    bad[b / "cmyk.jpg"] = (b / "cmyk.jpg").read_bytes()
    (root / "splits").mkdir()
    (root / "splits" / "val.txt").write_text("bob\n")
    return root, good, bad


def test_scan_finds_every_planted_bad_file_and_no_good_one(planted):
    root, good, bad = planted
    report = scan_dataset(root)
    reasons = dict(report.bad)
    assert set(reasons) == set(bad)
    assert report.counts == {"alice": 2, "bob": 2}
    assert report.ignored == ["splits"]
    assert reasons[root / "alice" / "zero.jpg"] == "zero-byte file"
    assert reasons[root / "alice" / "truncated.jpg"].startswith("truncated JPEG")
    assert reasons[root / "bob" / "cut.png"].startswith("truncated PNG")
    assert reasons[root / "bob" / "cmyk.jpg"].startswith("CMYK")
    assert reasons[root / "bob" / "deep.png"].startswith("16-bit")
    assert reasons[root / "bob" / "notes.jpg"] == "cannot be decoded by OpenCV"
    assert reasons[root / "alice" / ".DS_Store"].startswith("not an image file")
    assert "min 2, median 2, max 2" in report.summary()


def test_truncated_jpeg_still_half_decodes_so_marker_check_is_needed(planted):
    root, _, _ = planted
    truncated = root / "alice" / "truncated.jpg"
    assert cv2.imread(str(truncated)) is not None
    assert check_file(truncated).startswith("truncated JPEG")


def test_jpeg_component_count_from_start_of_frame(planted):
    root, good, _ = planted
    assert jpeg_components((root / "alice" / "a1.jpg").read_bytes()) == 3
    assert jpeg_components((root / "bob" / "cmyk.jpg").read_bytes()) == 4
    assert jpeg_components(b"\xff\xd8") is None


def test_check_cli_exit_code_and_fix_moves_bad_files(planted, capsys):
    root, good, bad = planted
    with pytest.raises(SystemExit) as exc:
        main(["check", str(root)])
    assert exc.value.code == 1
    assert capsys.readouterr().out.count("BAD\t") == len(bad)
    with pytest.raises(SystemExit) as exc:
        main(["check", str(root), "--fix"])
    assert exc.value.code == 0
    target = quarantine_dir(root)
    assert target == root.parent / "faces_quarantine"
    for path, data in bad.items():
        assert not path.exists()
        assert (target / path.parent.name / path.name).read_bytes() == data
    assert all(path.read_bytes() == data for path, data in good.items())
    with pytest.raises(SystemExit) as exc:
        main(["check", str(root)])
    assert exc.value.code == 0

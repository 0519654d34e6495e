"""Bad input never loses work: an image that fails to decode mid-run (or whose header claims more pixels than the
decoder's limit) is logged once, replaced by another image of the same identity, and listed in the end-of-run
summary, in both stages and with DataLoader workers.
"""
import shutil

import cv2

from tests.helpers.hostile import png_bomb
from tests.helpers.reliability import run, subset_overrides, train_cmd


def _faces_with_bad_files(orl_dir, root):
    """Copy 8 ORL identities to `root`/faces and plant a zero-byte .pgm, a truncated .jpg and a PNG bomb (instead
    of one of s3's faces, so there are still 82 images); return (dir, bad)."""
    data = root / "faces"
    for name in [f"s{i}" for i in range(1, 9)]:
        shutil.copytree(orl_dir / name, data / name)
    empty = data / "s1" / "0_empty.pgm"
    empty.write_bytes(b"")
    ok, jpeg = cv2.imencode(".jpg", cv2.imread(str(data / "s2" / "1.pgm")))
    truncated = data / "s2" / "0_truncated.jpg"
    truncated.write_bytes(jpeg.tobytes()[:len(jpeg) // 2])
    (data / "s3" / "1.pgm").unlink()
    bomb = png_bomb(data / "s3" / "0_bomb.png")
    return data, [str(empty), str(truncated), str(bomb)]


def _check_reported_once(result, bad):
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stderr.splitlines()  # warnings go to stderr
    for path in bad:
        warnings = [line for line in output if line.startswith(f"warning: {path}: cannot be decoded")]
        assert len(warnings) == 1, f"{path} logged {len(warnings)} times"
    summary = result.stdout.split("undecodable images were replaced during training:\n")[1].split()
    assert sorted(summary) == sorted(bad)


def test_bad_images_are_replaced_logged_once_and_summarised_in_both_stages(tmp_path, orl_dir):
    data, bad = _faces_with_bad_files(orl_dir, tmp_path)
    overrides = subset_overrides(tmp_path, data, extra=[
        "softmax_epochs=2", "softmax_batch_size=41",            # 82 images: 2 batches an epoch cover every one
        "triplet_epochs=1", "identities_per_batch=8", "images_per_identity=11"])  # one batch: every image
    stage1 = run(train_cmd("softmax", overrides + ["num_workers=2"]))   # decoded in DataLoader workers
    _check_reported_once(stage1, bad)
    assert "done: 2 epochs, 4 steps" in stage1.stdout

    stage2 = run(train_cmd("triplet", overrides))          # frozen backbone: features cached, then trained on
    _check_reported_once(stage2, bad)

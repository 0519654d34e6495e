"""tripletloss.atomic: whole files or nothing, and align's clean-up of temp files left by dead writers."""
import os
import subprocess
import sys

import pytest

from tripletloss.atomic import TMP_MARK, remove_stale_temps, temp_path, write_atomic, writer_pid


@pytest.mark.parametrize("durable", [False, True])
def test_write_atomic_replaces_the_file_and_leaves_no_temp(tmp_path, durable):
    target = tmp_path / "report.tsv"
    target.write_text("old\n")
    assert write_atomic(target, "new\n", durable=durable) == target
    write_atomic(tmp_path / "blob.bin", b"\x00\x01")
    assert target.read_text() == "new\n" and (tmp_path / "blob.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "report.tsv"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "pairs.txt"
    target.write_text("old\n")
    with pytest.raises(TypeError):
        write_atomic(target, 12345)  # neither bytes nor str: fails inside the write
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["pairs.txt"]


def test_temp_names_carry_the_writer_pid(tmp_path):
    tmp = temp_path(tmp_path / "a.jpg")
    assert tmp.parent == tmp_path and tmp.name.startswith(".a.jpg" + TMP_MARK)
    assert writer_pid(tmp) == os.getpid()
    assert writer_pid(tmp_path / f".a{TMP_MARK}1234.jpg") == 1234  # the naming of earlier versions
    assert writer_pid(tmp_path / "a.jpg") is None and writer_pid(tmp_path / f".a{TMP_MARK}x.jpg") is None


def test_remove_stale_temps_deletes_only_those_of_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    identity = tmp_path / "alice"
    identity.mkdir()
    stale = identity / f".1.jpg{TMP_MARK}{int(dead.stdout)}"
    live = temp_path(identity / "2.jpg")
    for path in (stale, live, identity / "3.jpg"):
        path.write_bytes(b"x")
    assert remove_stale_temps(tmp_path, f"*/.*{TMP_MARK}*") == 1
    assert sorted(p.name for p in identity.iterdir()) == sorted([live.name, "3.jpg"])

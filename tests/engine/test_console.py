"""Notes and warnings print once per run: in the main process only, whether the process group is up or not yet."""
import pytest

from tripletloss import console


@pytest.mark.parametrize("rank", ["0", "1"])
def test_only_the_main_process_says_and_warns(monkeypatch, capsys, rank):
    monkeypatch.setenv("RANK", rank)  # what torchrun sets, read until the process group is up
    console.say("restored 12 layers")
    console.warn("3 names have no images")
    out, err = capsys.readouterr()
    assert console.is_main() is (rank == "0")
    assert out == ("restored 12 layers\n" if rank == "0" else "")
    assert err == ("warning: 3 names have no images\n" if rank == "0" else "")


def test_without_torchrun_the_one_process_says(monkeypatch, capsys):
    monkeypatch.delenv("RANK", raising=False)
    console.say("done", file=None)
    assert capsys.readouterr().out == "done\n"

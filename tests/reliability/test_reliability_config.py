"""Config validation: every bad config.py value or `--set` override stops train.py with exit code 2 and exactly
one stderr line naming the key, no traceback, before any data is read (data_dir is an empty folder here, so a
run that got as far as reading data would fail with a different message).
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.reliability import run, subset_overrides, train_cmd
from tripletloss import ROOT

# (case id, stage, extra --set overrides, text the one error line must contain)
CASES = [
    ("negative lr", "softmax", ["softmax_lr=-0.1"], "softmax_lr must be > 0 or -1, got -0.1"),
    ("lr not a number", "softmax", ["softmax_lr=fast"], "softmax_lr must be float"),
    ("K < 2", "triplet", ["images_per_identity=1"], "images_per_identity must be >= 2, got 1"),
    ("margin zero", "triplet", ["margin=0"], "margin must be > 0"),
    ("missing data dir", "softmax", ["data_dir=/nonexistent/faces"], "data_dir '/nonexistent/faces' is not a dir"),
    ("image too small", "softmax", ["image_size=8"], "image_size must be >= 16, got 8"),
    ("image size not the network's", "softmax", ["image_size=48", "resize_size=54"],
     "image_size 48 differs from the input size 32"),
    ("typo'd key", "triplet", ["marign=0.3"], "unknown setting 'marign' (did you mean 'margin'?)"),
]
CONFIG_FILE_CASES = [
    ("config typo", ("margin = 0.2 ", "marign = 0.2 "), "unknown setting 'marign' (did you mean 'margin'?)"),
    ("config syntax error", ("margin = 0.2 ", "margin = = 0.2 "), "cannot be read (SyntaxError"),
]


def _command(tmp_path, case):
    _, stage, extra, _ = case
    overrides = subset_overrides(tmp_path / "tiny", tmp_path / "empty") + [f"data_dir={tmp_path / 'empty'}"]
    return train_cmd(stage, overrides + extra)


def _config_command(tmp_path, case):
    name, (old, new), _ = case
    text = (ROOT / "config.py").read_text()
    assert old in text
    path = tmp_path / f"{name.replace(' ', '_')}.py"
    path.write_text(text.replace(old, new))
    return train_cmd("triplet", [f"data_dir={tmp_path / 'empty'}"], "--config", path)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case's train.py process, four at a time; return {case id: CompletedProcess}."""
    tmp_path = tmp_path_factory.mktemp("config")
    (tmp_path / "empty").mkdir()
    commands = {case[0]: _command(tmp_path, case) for case in CASES}
    commands.update({case[0]: _config_command(tmp_path, case) for case in CONFIG_FILE_CASES})
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(commands, pool.map(run, commands.values())))


@pytest.mark.parametrize("case", [(c[0], c[-1]) for c in CASES + CONFIG_FILE_CASES], ids=lambda c: c[0])
def test_bad_setting_is_one_line_naming_the_key(results, case):
    name, expected = case
    result = results[name]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_missing_data_dir_flag_is_named_as_the_flag(tmp_path):
    result = run(train_cmd("softmax", subset_overrides(tmp_path / "tiny", tmp_path), "--data-dir",
                           f"{tmp_path}:{tmp_path / 'nowhere'}"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: --data-dir: '{tmp_path / 'nowhere'}' is not a directory"]

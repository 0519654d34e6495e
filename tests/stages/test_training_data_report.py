"""Training says what it trains on, warns about train_identities names without images and stops on none."""
import pytest

from tripletloss.errors import UserError
from tripletloss.stages.training_data import load_training_data


def settings(data_dir, ids):
    """The settings load_training_data reads."""
    return {"data_dir": data_dir, "train_identities": str(ids), "exclude_identities": "", "min_images_per_identity": 1}


def test_training_data_report_and_missing_identities(orl_dir, tmp_path, capsys):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "1.pgm").symlink_to(orl_dir / "s1" / "1.pgm")
    roots = f"{orl_dir}:{tmp_path}"
    ids = tmp_path / "ids.txt"
    ids.write_text("s1\ns2\none\nnobody\nghost\n")
    paths, labels, names = load_training_data(settings(roots, ids))
    assert names == ["one", "s1", "s2"] and len(paths) == 21
    out, err = capsys.readouterr()
    assert f"training data {roots}: 3 identities, 21 images, 1 identities with one image" in out
    assert f"warning: 2 names in {ids} have no images under {roots} (first: ghost, nobody)" in err
    ids.write_text("nobody\n")
    with pytest.raises(UserError, match="none of its 1 names"):
        load_training_data(settings(roots, ids))

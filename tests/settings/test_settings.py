"""config.py + --set: typed overrides, unknown keys and ranges fail naming the key."""
import pytest

from tripletloss.errors import ConfigError
from tripletloss.settings import load_settings
from tripletloss.settings_schema import SCHEMA


def test_repository_config_is_valid_and_complete():
    settings = load_settings()
    assert set(settings) == set(SCHEMA)


def test_overrides_are_typed():
    s = load_settings(overrides=["margin=0.3", "augment_flip=false", "images_per_identity=4", "selection=batch_hard"])
    assert (s["margin"], s["augment_flip"], s["images_per_identity"], s["selection"]) == (0.3, False, 4, "batch_hard")


@pytest.mark.parametrize("override, key", [
    ("marign=0.3", "marign"), ("margin=0", "margin"), ("softmax_lr=-1", "softmax_lr"),
    ("images_per_identity=1", "images_per_identity"), ("selection=hardest", "selection"),
    ("data_dir=/no/such/dir", "data_dir"), ("image_size=abc", "image_size"), ("resize_size=50", "resize_size"),
    ("augment_flip=maybe", "augment_flip"), ("pairs=/no/pairs.txt", "pairs"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        load_settings(overrides=[override])
    assert key in str(err.value) and "\n" not in str(err.value)


def test_typo_in_config_file_is_caught(tmp_path):
    from tripletloss import ROOT
    text = (ROOT / "config.py").read_text().replace("margin = 0.2", "margn = 0.2")
    path = tmp_path / "config.py"
    path.write_text(text)
    with pytest.raises(ConfigError, match="unknown setting 'margn'"):
        load_settings(path)


@pytest.mark.parametrize("override", ["margin=nan", "softmax_lr=inf", "weight_decay=-inf"])
def test_non_finite_numbers_are_rejected(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        load_settings(overrides=[override])


def test_resuming_a_checkpoint_saved_before_new_settings_existed_keeps_its_arithmetic(tmp_path):
    import train
    from tripletloss.settings import ADDED_LATER
    old = {k: v for k, v in load_settings().items() if k not in ADDED_LATER}
    ckpt = {"config": old, "state": {}, "optimizer": {}, "stage": "softmax"}
    saved = train._resumed_settings(ckpt, tmp_path / "step-1.pt", train.parse_args(["--stage", "softmax"]))
    assert saved == dict(old, **ADDED_LATER) and saved["channels_last"] is False


def test_base_config_chain_builds_on_its_base_and_a_circle_is_one_error(tmp_path):
    from tripletloss.resources import path as bundled
    (tmp_path / "base.py").write_text(f'BASE_CONFIG = "{bundled("config.py")}"\nseed = 7\n')
    (tmp_path / "top.py").write_text('BASE_CONFIG = "base.py"\nmargin = 0.3\n')
    settings = load_settings(tmp_path / "top.py")
    assert settings["seed"] == 7 and settings["margin"] == 0.3
    (tmp_path / "a.py").write_text('BASE_CONFIG = "b.py"\nseed = 1\n')
    (tmp_path / "b.py").write_text('BASE_CONFIG = "a.py"\nseed = 2\n')
    circle = r"a\.py: BASE_CONFIG goes round in a circle \(.*a\.py -> .*b\.py -> .*a\.py\)"
    with pytest.raises(ConfigError, match=circle):
        load_settings(tmp_path / "a.py")

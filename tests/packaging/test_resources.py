"""tripletloss.resources: in a source checkout the repository's own files (an edit takes effect without
reinstalling) and ROOT/.cache; installed, the package's copies and a user cache dir. The installed package itself
is exercised by test_wheel.py."""
from tripletloss import ROOT, resources
from tripletloss.net.spec import input_of, load_spec
from tripletloss.resources import resolve_path

BUNDLED_TRIPLET = ROOT / "prototxt_like" / "triplet.yaml"


def test_source_checkout_uses_the_repository_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resources.packaged() is None
    assert resources.path("config.py") == ROOT / "config.py"
    assert resolve_path("prototxt_like/softmax.yaml") == ROOT / "prototxt_like" / "softmax.yaml"
    assert resources.cache_dir() == ROOT / ".cache"
    assert resources.name_of(ROOT / "prototxt_like" / "softmax.yaml") == "prototxt_like/softmax.yaml"
    assert resources.name_of(tmp_path / "mine.yaml") == str(tmp_path / "mine.yaml")


def test_installed_package_uses_its_copies_and_a_user_cache(tmp_path, monkeypatch):
    copies = tmp_path / "site-packages" / "tripletloss" / "_resources"
    monkeypatch.setattr(resources, "packaged", lambda: copies)
    monkeypatch.chdir(tmp_path)
    assert resolve_path("kernels/mining.cu") == copies / "kernels" / "mining.cu"
    assert resources.name_of(copies / "prototxt_like" / "triplet.yaml") == "prototxt_like/triplet.yaml"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resources.cache_dir() == tmp_path / "xdg" / "tripletloss"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for ignored in ("", "relative/cache"):  # unset or relative (invalid by the XDG spec): ~/.cache
        monkeypatch.setenv("XDG_CACHE_HOME", ignored)
        assert resources.cache_dir() == tmp_path / "home" / ".cache" / "tripletloss"


def test_copy_of_a_bundled_yaml_elsewhere_includes_the_bundled_backbone(tmp_path):
    copy = tmp_path / "my_triplet.yaml"
    copy.write_text(BUNDLED_TRIPLET.read_text().replace("name: triplet", "name: my_triplet"))
    mine, bundled = (load_spec(path, {"embedding_size": 8}) for path in (copy, BUNDLED_TRIPLET))
    included = [layer for layer in mine["layers"] if layer["file"] != str(copy)]
    assert {layer["file"] for layer in included} == {str(ROOT / "prototxt_like" / "backbone_resnet_small.yaml")}
    assert included == bundled["layers"][:len(included)] and len(mine["layers"]) == len(bundled["layers"])
    assert mine["name"] == "my_triplet" and mine["input"] == bundled["input"]


def test_include_beside_the_file_comes_before_the_bundled_one(tmp_path):
    copy = tmp_path / "my_triplet.yaml"
    copy.write_text(BUNDLED_TRIPLET.read_text())
    (tmp_path / "backbone_resnet_small.yaml").write_text(
        "input: {channels: 3, size: 32}\nlayers:\n  - {name: bn8, type: conv, num_output: 4, kernel_size: 3}\n")
    assert input_of(copy) == {"channels": 3, "size": 32}
    assert [layer["name"] for layer in load_spec(copy, {"embedding_size": 8})["layers"]] == ["bn8", "fc9_1", "norm"]


def test_import_dlib_writes_its_yaml_into_the_checkout_or_beside_the_checkpoint(tmp_path, monkeypatch):
    from tripletloss.commands.import_dlib import default_yaml
    assert default_yaml("models/x.pt") == ROOT / "prototxt_like" / "dlib_resnet_v1.yaml"
    monkeypatch.setattr(resources, "packaged", lambda: tmp_path / "_resources")
    assert str(default_yaml("models/x.pt")) == "models/x.yaml"

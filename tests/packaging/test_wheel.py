"""The wheel: built offline from a copy of the repository, it holds nothing outside tripletloss/ (the YAML layer
lists, CUDA kernels and default config.py inside it, under _resources/), and, installed non-editable in a fresh
venv, runs commands from a folder outside the repository with the package's own files."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from tripletloss import ROOT

#: What setup.py reads to build the wheel (copied, so the build leaves no build/ or egg-info/ in the checkout).
BUILD_INPUTS = ("setup.py", "MANIFEST.in", "README.md", "config.py", "kernels", "prototxt_like", "tripletloss")
RESOURCES = ("config.py", "kernels/*.cu", "prototxt_like/*.yaml")

#: Run by the venv's python: load the packaged config.py, build its triplet net from the packaged YAML (which
#: includes the packaged backbone) and save it as a checkpoint; print where the package and it found their files.
PROBE = """
import json, sys, sysconfig
import tripletloss
from tripletloss.data.synthetic import default_dataset_dir
from tripletloss.engine.checkpoint import FORMAT, save_atomic
from tripletloss.mining.cuda_backend import KERNEL_SOURCE
from tripletloss.net import build_net
from tripletloss.resources import resolve_path
from tripletloss.settings import load_settings

settings = load_settings()
net = build_net(resolve_path(settings["triplet_net"]), {"embedding_size": 16})
preprocess = {"size": 96, "resize": 96, "mean": [127.5] * 3, "std": [128.0] * 3}
save_atomic({"format": FORMAT, "net": net.spec, "model": net.layers.state_dict(), "preprocess": preprocess},
            sys.argv[1])
print(json.dumps({"site": sysconfig.get_paths()["purelib"], "package": tripletloss.__file__,
                  "net": net.spec["file"], "layers": len(net.spec["layers"]), "kernel": str(KERNEL_SOURCE),
                  "kernel_found": KERNEL_SOURCE.is_file(), "cache": str(default_dataset_dir())}))
"""


def _offline_build_impossible():
    """Return why `pip wheel --no-build-isolation` cannot build here (no setuptools, no bdist_wheel), or None."""
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed"
    if importlib.util.find_spec("wheel") is None and importlib.util.find_spec("setuptools.command.bdist_wheel") is None:
        return "neither the wheel package nor a setuptools with bdist_wheel (>= 70.1) is installed"
    return None


def _run(cmd, cwd, env=None, timeout=300):
    """Run `cmd`; return its CompletedProcess, failing the test with its output when it exits non-zero."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Path of the wheel built (offline: no index, no build isolation) from a copy of the build inputs."""
    reason = _offline_build_impossible()
    if reason:
        pytest.skip(f"cannot build the wheel offline (pip wheel --no-build-isolation): {reason}")
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", out,
          source], cwd=source)
    (found,) = out.glob("tripletloss-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """(python, environment) of a fresh venv (seeing the system's torch and the rest) with the wheel installed."""
    home = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", home], cwd=home)
    python = home / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["XDG_CACHE_HOME"] = str(home / "xdg_cache")
    # The system's pip, seen through --system-site-packages, installs into the venv; --ignore-installed keeps it
    # from treating the editable checkout registered in the system site-packages as this package.
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", wheel], cwd=home, env=env)
    return python, env


def test_wheel_holds_only_the_package_and_its_resources(wheel):
    packaged = {f"tripletloss/_resources/{p.relative_to(ROOT).as_posix()}": p.read_bytes()
                for pattern in RESOURCES for p in ROOT.glob(pattern)}
    assert {"tripletloss/_resources/config.py", "tripletloss/_resources/kernels/mining.cu",
            "tripletloss/_resources/prototxt_like/triplet.yaml"} <= packaged.keys()
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert packaged.keys() <= names
        assert all(zf.read(name) == content for name, content in packaged.items())
    assert {name.split("/")[0] for name in names} == {"tripletloss", wheel.name.split("-py")[0] + ".dist-info"}
    assert {p.relative_to(ROOT).as_posix() for p in (ROOT / "tripletloss").rglob("*.py")} <= names


def test_installed_wheel_runs_outside_the_repository(venv, tmp_path):
    python, env = venv
    probe = json.loads(_run([python, "-c", PROBE, tmp_path / "tiny.pt"], cwd=tmp_path, env=env).stdout)
    site = Path(probe["site"])
    resources = site / "tripletloss" / "_resources"
    assert Path(probe["package"]) == site / "tripletloss" / "__init__.py"
    assert Path(probe["net"]) == resources / "prototxt_like" / "triplet.yaml" and probe["layers"] > 2  # with the backbone it includes
    assert Path(probe["kernel"]) == resources / "kernels" / "mining.cu" and probe["kernel_found"]
    assert Path(probe["cache"]) == Path(env["XDG_CACHE_HOME"]) / "tripletloss" / "synthetic_faces"
    assert (python.parent / "tripletloss").is_file()  # the console script
    for identity in ("a", "b"):
        (tmp_path / "faces" / identity).mkdir(parents=True)
        for k in range(2):
            image = np.random.default_rng(k).integers(0, 256, (96, 96, 3), dtype=np.uint8)
            cv2.imwrite(str(tmp_path / "faces" / identity / f"{k}.png"), image)
    _run([python, "-m", "tripletloss", "embed", "--model", "tiny.pt", "--data-dir", "faces", "--aligned",
          "--device", "cpu", "--out", "emb.npy"], cwd=tmp_path, env=env)
    embeddings = np.load(tmp_path / "emb.npy")
    assert embeddings.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)

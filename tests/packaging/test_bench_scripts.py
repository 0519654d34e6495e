"""Every benchmark script under bench/ imports (its imports of the package and of tests' helpers still resolve after
a move or a rename) and says how to run it in its docstring."""
import importlib.util

import pytest

from tripletloss import ROOT

SCRIPTS = sorted((ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_bench_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(script.parent))        # as `python bench/X.py` runs it
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__doc__ and module.__doc__.strip()

"""Packages import one way: no module under tripletloss/ imports from its own layer or a layer above it.

The layer order is the diagram in docs/architecture.md (the block after the LAYERS_MARK line, top layer first),
so the documentation and this test cannot disagree. Imports inside functions count as much as those at the top.
"""
import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "tripletloss"
ARCHITECTURE = REPO / "docs" / "architecture.md"
LAYERS_MARK = "<!-- layers: tests/packaging/test_import_layers.py reads the block below -->"


def read_layers(text):
    """Return the layers of the architecture doc's diagram, top first: one list of names per line that names
    modules (`engine/` or `settings.py`), arrows and blank lines skipped. ValueError without the marked block."""
    block = re.search(re.escape(LAYERS_MARK) + r"\s*```[a-z]*\n(.*?)```", text, re.S)
    if block is None:
        raise ValueError(f"{ARCHITECTURE}: no ``` block after {LAYERS_MARK}")
    return [line.split() for line in block.group(1).splitlines() if re.search(r"\w", line)]


def unit_of(module):
    """The layer unit of a dotted module name: its sub-package or top-level module under tripletloss
    ("engine" for tripletloss.engine.loop, "settings" for tripletloss.settings), "__init__" for the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path):
    """The dotted module name of a .py file under tripletloss/ (a package's __init__.py names the package)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted):
    """True when the dotted name is a module or package of the source tree (not a name defined inside one)."""
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(tree, module, is_package):
    """Yield (line, dotted module) for every import of tripletloss.* anywhere in `tree` (functions included).

    `from X import name` yields X.name when that is a module itself (`from tripletloss.engine import
    distributed`), else X; relative imports are resolved against `module` (`is_package`: it is an __init__.py).
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[:len(module.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield node.lineno, full if is_module(full) else base


def violations(sources, layers):
    """Return one line per import that goes sideways or up the `layers` (top first), naming module, line and
    import. `sources` maps a dotted module name to (source text, is_package)."""
    rank = {name.rstrip("/").removesuffix(".py"): len(layers) - i for i, line in enumerate(layers) for name in line}
    found = []
    for module, (text, is_package) in sorted(sources.items()):
        own = unit_of(module)
        for line, target in sorted(set(imported_modules(ast.parse(text), module, is_package))):
            other = unit_of(target)
            if target.split(".")[0] != "tripletloss" or other == own:
                continue
            if own not in rank or other not in rank:
                found.append(f"{module} line {line} imports {target}: {own if own not in rank else other} is in "
                             f"no layer")
            elif rank[other] >= rank[own]:
                where = "the same layer as" if rank[other] == rank[own] else "a layer above"
                found.append(f"{module} line {line} imports {target}: {other} is in {where} {own}")
    return found


def package_sources():
    """{dotted module name: (source text, is_package)} of every .py file under tripletloss/."""
    return {module_name(p): (p.read_text(), p.name == "__init__.py") for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.fixture(scope="module")
def layers():
    """The layer diagram of docs/architecture.md, top first."""
    return read_layers(ARCHITECTURE.read_text())


def test_every_module_and_package_is_in_exactly_one_layer(layers):
    names = [name for line in layers for name in line]
    actual = {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    actual |= {p.name for p in PACKAGE.glob("*.py")}
    assert sorted(n for n in set(names) if names.count(n) > 1) == [], "named twice in docs/architecture.md"
    assert sorted(actual - set(names)) == [], "missing from the layers of docs/architecture.md"
    assert sorted(set(names) - actual) == [], "in docs/architecture.md but not in tripletloss/ (a '/' marks a package)"


def test_no_module_imports_from_its_own_layer_or_above(layers):
    assert violations(package_sources(), layers) == []


def test_checker_reports_function_level_and_relative_imports_that_go_up():
    layers = [["inference.py"], ["engine/"], ["errors.py", "__init__.py"]]
    sources = {
        "tripletloss.engine.distributed": ("def setup():\n    from tripletloss.inference import pick_device\n", False),
        "tripletloss.engine.loop": ("from tripletloss.engine import distributed\nfrom ..errors import UserError\n",
                                    False),
        "tripletloss.errors": ("import tripletloss\n", False),
        "tripletloss.inference": ("from .engine.device import pick_device\nfrom . import engine\n", False),
    }
    assert violations(sources, layers) == [
        "tripletloss.engine.distributed line 2 imports tripletloss.inference: inference is in a layer above engine",
        "tripletloss.errors line 1 imports tripletloss: __init__ is in the same layer as errors",
    ]

"""Reading a YAML layer list (prototxt_like/*.yaml) into a resolved, validated spec: a plain dict.

The resolved spec has includes expanded, `$variables` substituted and every layer's defaults filled in, so it can be
stored inside a checkpoint and rebuilt later without the YAML files.
"""
from pathlib import Path

import yaml

from tripletloss import resources
from tripletloss.errors import NetSpecError
from tripletloss.net.layers import LAYER_TYPES

COMMON_FIELDS = ("name", "type", "bottom", "top", "lr_mult", "decay_mult")
INCLUDE_OVERRIDES = ("lr_mult", "decay_mult")
#: Fields that count pixels or channels: whole numbers >= 0 wherever they appear.
COUNT_FIELDS = ("num_output", "kernel_size", "stride", "pad", "dilation", "group")


def load_spec(path, variables=None, _open=()):
    """Read the YAML file at `path`; return the resolved spec dict (name, file, input, layers, outputs)."""
    path = Path(path)
    raw = _read_yaml(path)
    layers, net_input = [], raw.get("input")
    for inc in _includes(path, raw, _open):
        sub = load_spec(inc["path"], variables, (*_open, path.resolve()))
        net_input = net_input or sub["input"]
        overrides = {k: _mult_pair(inc[k], f"{path}: include '{inc['file']}'", k) for k in INCLUDE_OVERRIDES if k in inc}
        layers += [dict(layer, **overrides) for layer in sub["layers"]]
    own = [_resolve_layer(path, layer, variables or {}) for layer in raw.get("layers") or []]
    spec = {"name": raw.get("name", path.stem), "file": str(path), "input": net_input,
            "layers": layers + own, "outputs": dict(raw.get("outputs") or {})}
    check_spec(spec)
    return spec


def input_of(path, _open=()):
    """Return the `input` mapping ({channels, size}) of the YAML layer list at `path`, following includes."""
    path = Path(path)
    raw = _read_yaml(path)
    for inc in _includes(path, raw, _open):
        raw.setdefault("input", input_of(inc["path"], (*_open, path.resolve())))
    return raw.get("input") or {}


def _includes(path, raw, open_files):
    """The include entries of YAML mapping `raw` (from `path`) as {file: str, path: Path, ...} dicts (path: the file
    it names, _include_path); NetSpecError for an entry without a file name, or one that includes a file already
    being read (`open_files`: a cycle)."""
    entries = raw.get("include") or []
    if not isinstance(entries, list):
        raise NetSpecError(f"{path}: include must be a list of file names or {{file: NAME, ...}} mappings")
    out = [{"file": inc} if isinstance(inc, str) else inc for inc in entries]
    for inc in out:
        if not isinstance(inc, dict) or not isinstance(inc.get("file"), str):
            raise NetSpecError(f"{path}: include entry {inc!r} needs a 'file: NAME'")
        inc["path"] = _include_path(path, inc["file"])
        if inc["path"].resolve() in (*open_files, path.resolve()):
            raise NetSpecError(f"{path}: include '{inc['file']}' is a cycle (it includes itself, directly or not)")
    return out


def _include_path(path, name):
    """Return the file that include `name` of the layer list at `path` reads: `name` relative to path's folder, or,
    when no such file exists, the bundled layer list prototxt_like/`name` (tripletloss.resources) if there is one, so
    that a copy of a bundled YAML edited in another folder still includes the bundled backbone."""
    beside = path.parent / name
    bundled = resources.path(Path("prototxt_like") / name)
    return bundled if not beside.exists() and bundled.is_file() else beside


def _read_yaml(path):
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise NetSpecError(f"{path}: no such layer-list file") from None
    except yaml.YAMLError as exc:
        raise NetSpecError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise NetSpecError(f"{path}: expected a mapping with 'layers', got {type(raw).__name__}")
    unknown = set(raw) - {"name", "input", "include", "layers", "outputs"}
    if unknown:
        raise NetSpecError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    return raw


def _substitute(value, variables, where):
    if isinstance(value, str) and value.startswith("$"):
        if value[1:] not in variables:
            raise NetSpecError(f"{where}: variable {value} is not defined (known: {sorted(variables)})")
        return variables[value[1:]]
    if isinstance(value, list):
        return [_substitute(v, variables, where) for v in value]
    return value


def _resolve_layer(path, layer, variables):
    if not isinstance(layer, dict) or not all(isinstance(layer.get(k), str) for k in ("name", "type")):
        raise NetSpecError(f"{path}: every layer needs a 'name' and a 'type' (strings), got {layer!r}")
    where = f"{path}: layer '{layer['name']}'"
    kind = LAYER_TYPES.get(layer["type"])
    if kind is None:
        raise NetSpecError(f"{where}: unknown type '{layer['type']}' (known: {', '.join(sorted(LAYER_TYPES))})")
    unknown = set(layer) - set(COMMON_FIELDS) - set(kind.required) - set(kind.optional)
    if unknown:
        raise NetSpecError(f"{where}: unknown field(s) {sorted(unknown)} for type '{layer['type']}'")
    missing = [k for k in kind.required if k not in layer]
    if missing:
        raise NetSpecError(f"{where}: missing field(s) {missing} for type '{layer['type']}'")
    out = {k: _substitute(v, variables, where) for k, v in layer.items()}
    for k in COUNT_FIELDS:
        if out.get(k) is not None and not (type(out[k]) is int and out[k] >= 0):
            raise NetSpecError(f"{where}: {k} must be a whole number >= 0, got {out[k]!r}")
    for k, default in kind.optional.items():
        out.setdefault(k, default)
    out["lr_mult"] = _mult_pair(out.get("lr_mult", 1), where, "lr_mult")
    out["decay_mult"] = _mult_pair(out.get("decay_mult", 1), where, "decay_mult")
    out["file"] = str(path)
    return out


def _mult_pair(value, where, key):
    pair = value if isinstance(value, list) else [value, value]
    if len(pair) != 2 or not all(isinstance(v, (int, float)) and v >= 0 for v in pair):
        raise NetSpecError(f"{where}: {key} must be a number >= 0 or a [weight, bias] pair, got {value!r}")
    return [float(v) for v in pair]


def check_spec(spec):
    """Check names are unique, bottoms exist (one per layer unless its type takes several: LayerType.multi_input)
    and outputs name blobs; raise NetSpecError naming file and layer."""
    blobs, names = {"data"}, set()
    net_input = spec["input"] if isinstance(spec["input"], dict) else {}
    if not all(type(net_input.get(k, 3)) is int and net_input.get(k, 3) > 0 for k in ("size", "channels")) \
            or "size" not in net_input:
        raise NetSpecError(f"{spec['file']}: needs 'input: {{channels: C, size: S}}' with positive integers, "
                           f"got {spec['input']!r}")
    previous = "data"
    for layer in spec["layers"]:
        where = f"{layer['file']}: layer '{layer['name']}'"
        if layer["name"] in names or "." in layer["name"]:
            raise NetSpecError(f"{where}: layer names must be unique and contain no '.'")
        names.add(layer["name"])
        bottoms = layer.setdefault("bottom", previous)
        bottoms = bottoms if isinstance(bottoms, list) else [bottoms]
        if len(bottoms) != 1 and not LAYER_TYPES[layer["type"]].multi_input:
            raise NetSpecError(f"{where}: a '{layer['type']}' layer takes one bottom, got {len(bottoms)}")
        for b in bottoms:
            if b not in blobs:
                raise NetSpecError(f"{where}: bottom '{b}' is not produced by an earlier layer")
        previous = layer.setdefault("top", layer["name"])
        if previous in blobs:
            raise NetSpecError(f"{where}: top '{previous}' is already produced (in-place layers are not supported)")
        blobs.add(previous)
    for key, blob in spec["outputs"].items():
        if blob not in blobs:
            raise NetSpecError(f"{spec['file']}: output '{key}' names unknown blob '{blob}'")

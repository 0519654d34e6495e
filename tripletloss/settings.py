"""Loading, overriding and checking the user's settings (config.py plus `--set KEY=VALUE`).

`settings_schema.SCHEMA` declares every setting's type and range; config.py supplies the values. Everything is
checked before any data is read, and each problem is one line naming the key.
"""
import difflib
import runpy
import types
from pathlib import Path

from tripletloss import resources
from tripletloss.engine.lr_file import read_schedule_file
from tripletloss.errors import ConfigError
from tripletloss.settings_schema import SCHEMA, describe, stage_keys

#: Settings added after runs were saved, each with the value that continues such a run exactly: a checkpoint whose
#: saved settings lack one resumes with this value (channels_last and precision change the arithmetic; the decode
#: cache does not; the recipes options are off, health_intervals 0 printing no warnings, as before they existed).
ADDED_LATER = {key: setting.before for key, setting in SCHEMA.items() if setting.before is not None}


def read_config_file(path, _including=()):
    """Run the config file at `path`; return {key: value} of its settings (lower-case, non-module globals).

    A file that sets `BASE_CONFIG = "other.py"` (relative to itself) starts from that file's settings and
    overrides only those it sets (the recipes/ files build on the repository's config.py this way). A chain of
    BASE_CONFIG files that comes back to one of its files is a ConfigError naming the chain.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.resolve() in _including:
        chain = " -> ".join(str(p) for p in (*_including, path.resolve()))
        raise ConfigError(f"{path}: BASE_CONFIG goes round in a circle ({chain})")
    try:
        values = runpy.run_path(str(path))
    except SystemExit as exc:  # a config file has no business ending the program
        raise ConfigError(f"{path}: called sys.exit({exc.code!r}) while being read; a config file only sets "
                          f"values") from None
    except Exception as exc:  # a user's syntax error or exception, reported in one line
        raise ConfigError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    including = (*_including, path.resolve())
    base = read_config_file(path.parent / values["BASE_CONFIG"], including) if "BASE_CONFIG" in values else {}
    return dict(base, **{k: v for k, v in values.items()
                         if not k.startswith("_") and k.islower() and not isinstance(v, types.ModuleType)})


def apply_overrides(values, assignments):
    """Return a copy of `values` with each 'KEY=VALUE' string of `assignments` applied (typed by SCHEMA)."""
    out = dict(values)
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"--set {item}: expected KEY=VALUE")
        if key not in SCHEMA:
            raise ConfigError(f"--set {item}: unknown setting '{key}'{_suggest(key)}")
        try:
            out[key] = SCHEMA[key].parse(text.strip())
        except ValueError:
            raise ConfigError(f"--set {item}: {key} must be {SCHEMA[key].kind.__name__}") from None
    return out


def _suggest(key):
    close = difflib.get_close_matches(key, SCHEMA, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def validate(values, source="config.py"):
    """Check every setting's presence, type and range and the cross-setting rules; raise ConfigError on the first.

    Returns `values` unchanged when all is well.
    """
    for key in values:
        if key not in SCHEMA:
            raise ConfigError(f"{source}: unknown setting '{key}'{_suggest(key)}")
    for key, setting in SCHEMA.items():
        if key not in values:
            raise ConfigError(f"{source}: setting '{key}' is missing")
        problem = setting.problem(values[key])
        if problem:
            raise ConfigError(f"{source}: {key} {problem}")
    _check_relations(values, source)
    return values


def _check_relations(v, source):
    if v["resize_size"] < v["image_size"]:
        raise ConfigError(f"{source}: resize_size ({v['resize_size']}) must be >= image_size ({v['image_size']})")
    _check_roots(v, "data_dir", source)
    for key in ("train_identities", "exclude_identities", "pairs"):
        if v[key] and not Path(v[key]).is_file():
            raise ConfigError(f"{source}: {key} file '{v[key]}' does not exist")
    if bool(v["lfw_dir"]) != bool(v["pairs"]):
        raise ConfigError(f"{source}: lfw_dir and pairs must be set together (evaluation needs both)")
    if v["lfw_dir"] and not Path(v["lfw_dir"]).is_dir():
        raise ConfigError(f"{source}: lfw_dir '{v['lfw_dir']}' is not a directory")
    for key in stage_keys("net"):
        if not resources.resolve_path(v[key]).is_file():
            raise ConfigError(f"{source}: {key} '{v[key]}' does not exist")
    _check_teacher(v, source)
    _check_recipe_options(v, source)


def _check_recipe_options(v, source):
    """Cross-setting rules of the seeds' options: schedule file with lr -1, pinguo's own batches."""
    from_file = [key for key in stage_keys("lr") if v[key] == -1]
    if from_file:
        if not v["learning_rate_schedule_file"]:
            raise ConfigError(f"{source}: {from_file[0]} -1 (rates from a file) needs learning_rate_schedule_file")
        read_schedule_file(resources.resolve_path(v["learning_rate_schedule_file"]))  # ConfigError naming file and line
    if v["selection"] == "pinguo" and v["extra_negatives"]:
        raise ConfigError(f"{source}: extra_negatives must be 0 with selection=pinguo (its batches bring their "
                          "own negatives)")


def _check_teacher(v, source):
    if not v["teacher"]:
        if v["softmax_weight"] == 0:
            raise ConfigError(f"{source}: softmax_weight is 0 and no teacher is set: stage 1 would have no loss")
        return
    if not resources.resolve_path(v["teacher"]).is_file():
        raise ConfigError(f"{source}: teacher '{v['teacher']}' does not exist (`python -m tripletloss import-dlib` "
                          "writes models/dlib_resnet_v1.pt)")
    roots, data_roots = (len(list(filter(None, v[key].split(":")))) for key in ("teacher_data_dir", "data_dir"))
    if roots != data_roots:
        raise ConfigError(f"{source}: teacher_data_dir must be set with teacher, one root (the teacher's copies of "
                          f"the images) per data_dir root, in the same order; got {roots} for {data_roots}")
    _check_roots(v, "teacher_data_dir", source)


def missing_root(roots):
    """Return the first of the ':'-joined folders `roots` that is not a directory, or None."""
    return next((root for root in filter(None, roots.split(":")) if not Path(root).is_dir()), None)


def _check_roots(v, key, source):
    """Raise ConfigError unless every ':'-joined root of setting `key` is a directory."""
    root = missing_root(v[key])
    if root is not None:
        raise ConfigError(f"{source}: {key} '{root}' is not a directory")


def default_config_path():
    """Return the config file read when none is given: the bundled config.py (the repository's in a source checkout,
    the package's copy when installed)."""
    return resources.path("config.py")


def load_settings(config_path=None, overrides=()):
    """Read config.py (default: default_config_path()), apply `--set` overrides, validate; return the settings
    dict."""
    config_path = Path(config_path) if config_path else default_config_path()
    return validate(apply_overrides(read_config_file(config_path), overrides), source=config_path.name)


def settings_help():
    """Return --help's list of every setting (settings_schema.describe) with the default config file's values;
    without values when that file cannot be read (its error shows when training starts)."""
    try:
        values = read_config_file(default_config_path())
    except ConfigError:
        values = {}
    return describe(values)

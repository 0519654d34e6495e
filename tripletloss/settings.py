"""Loading, overriding and checking the user's settings (config.py plus `--set KEY=VALUE`).

`RULES` declares every setting's type and range; config.py supplies the values. Everything is checked before any
data is read, and each problem is one line naming the key.
"""
import difflib
import math
import runpy
import types
from pathlib import Path

from tripletloss import ROOT
from tripletloss.engine.lr_file import read_schedule_file
from tripletloss.errors import ConfigError
from tripletloss.resources import resolve_path

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class Rule:
    """A setting's type (int, float, bool, str) with optional bounds or choices."""

    def __init__(self, kind, lo=None, hi=None, choices=None, lo_open=False, also=()):
        self.kind, self.lo, self.hi, self.choices, self.lo_open = kind, lo, hi, choices, lo_open
        self.also = also  # values accepted outside the bounds (a learning rate's -1: "use the schedule file")

    def parse(self, text):
        """Convert a `--set` string to this rule's type; raise ValueError if it does not parse."""
        if self.kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        return self.kind(text)

    def problem(self, value):
        """Return None if `value` satisfies the rule, else a short description of what it must be."""
        ok_type = isinstance(value, self.kind) and not (self.kind is not bool and isinstance(value, bool))
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok_type = True
        if not ok_type:
            return f"must be {self.kind.__name__}, got {value!r}"
        if self.kind is float and not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        if value in self.also:
            return None
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            also = "".join(f" or {v}" for v in self.also)
            return f"must be {'>' if self.lo_open else '>='} {self.lo}{also}, got {value!r}"
        if self.hi is not None and value > self.hi:
            return f"must be <= {self.hi}, got {value!r}"
        return None


def _pos_int(lo=1):
    return Rule(int, lo=lo)


def _nonneg(kind=float):
    return Rule(kind, lo=0)


def _positive():
    return Rule(float, lo=0, lo_open=True)


def _learning_rate():
    """> 0 and at most 1e30 (the optimizers apply rates in float32, max ~3.4e38), or -1: take the rate from
    learning_rate_schedule_file (facenet's --learning_rate -1)."""
    return Rule(float, lo=0, hi=1e30, lo_open=True, also=(-1,))


OPTIMIZERS = ("sgd", "adam", "ADAGRAD", "ADADELTA", "RMSPROP", "MOM", "ADAM")


RULES = {
    "data_dir": Rule(str), "train_identities": Rule(str), "exclude_identities": Rule(str),
    "min_images_per_identity": _pos_int(),
    "image_size": _pos_int(16), "resize_size": _pos_int(16), "crop_fraction": Rule(float, 0.05, 1.0),
    "augment_flip": Rule(bool), "random_rotate": Rule(bool), "per_image_standardization": Rule(bool),
    "num_workers": _nonneg(int), "decode_cache": Rule(bool),
    "work_dir": Rule(str), "device": Rule(str), "seed": Rule(int, 0, 2**32 - 1), "deterministic": Rule(bool),
    "channels_last": Rule(bool),
    "checkpoint_every_steps": _nonneg(int), "keep_checkpoints": _pos_int(), "max_nonfinite_steps": _pos_int(),
    "log_every_steps": _pos_int(),
    "softmax_net": Rule(str), "softmax_epochs": _nonneg(int), "softmax_batch_size": _pos_int(2),
    "softmax_lr": _learning_rate(), "softmax_label_smoothing": Rule(float, 0.0, 0.99),
    "finetune_freeze_epochs": _nonneg(int), "finetune_unfreeze_from": Rule(str),
    "softmax_weight": _nonneg(), "center_loss": _nonneg(), "center_loss_alpha": Rule(float, 0.0, 1.0),
    "prelogits_norm": _nonneg(), "prelogits_norm_p": Rule(float, 1.0), "teacher": Rule(str),
    "teacher_data_dir": Rule(str), "teacher_weight": _nonneg(), "teacher_loss": Rule(str, choices=("cosine", "mse")),
    "triplet_net": Rule(str), "triplet_epochs": _nonneg(int), "triplet_lr": _learning_rate(),
    "embedding_size": _pos_int(), "identities_per_batch": _pos_int(2), "images_per_identity": _pos_int(2),
    "margin": _positive(),
    "selection": Rule(str, choices=("semihard", "violating", "batch_hard", "batch_all", "pinguo")),
    "pinguo_triplets": _pos_int(), "extra_negatives": _nonneg(int),
    "mining_backend": Rule(str, choices=("auto", "torch", "cuda")), "batches_per_epoch": _nonneg(int),
    "cache_features": Rule(bool),
    "optimizer": Rule(str, choices=OPTIMIZERS), "momentum": Rule(float, 0.0, 1.0),
    "weight_decay": _nonneg(), "lr_schedule": Rule(str, choices=("cosine", "step", "constant", "exponential")),
    "lr_step_epochs": _pos_int(), "lr_gamma": Rule(float, 0.0, 1.0, lo_open=True), "warmup_epochs": _nonneg(),
    "grad_clip": _nonneg(), "learning_rate_decay_epochs": _pos_int(),
    "learning_rate_decay_factor": Rule(float, 0.0, 1.0, lo_open=True), "learning_rate_schedule_file": Rule(str),
    "moving_average_decay": Rule(float, 0.0, 1.0), "health_intervals": _nonneg(int),
    "lfw_dir": Rule(str), "pairs": Rule(str), "eval_every_epochs": _pos_int(), "eval_flip": Rule(bool),
}

#: Settings added after runs were saved, each with the value that continues such a run exactly: a checkpoint whose
#: saved settings lack one resumes with this value (channels_last changes the arithmetic; the decode cache does not;
#: the recipes options are off, health_intervals 0 printing no warnings, as before they existed).
ADDED_LATER = {"exclude_identities": "", "min_images_per_identity": 1, "decode_cache": True, "channels_last": False,
               "random_rotate": False, "per_image_standardization": False, "pinguo_triplets": 10,
               "extra_negatives": 0, "learning_rate_decay_epochs": 100, "learning_rate_decay_factor": 1.0,
               "learning_rate_schedule_file": "", "moving_average_decay": 0.0, "health_intervals": 0}


def read_config_file(path):
    """Run the config file at `path`; return {key: value} of its settings (lower-case, non-module globals).

    A file that sets `BASE_CONFIG = "other.py"` (relative to itself) starts from that file's settings and
    overrides only those it sets (the recipes/ files build on the repository's config.py this way).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = runpy.run_path(str(path))
    except SystemExit as exc:  # a config file has no business ending the program
        raise ConfigError(f"{path}: called sys.exit({exc.code!r}) while being read; a config file only sets "
                          f"values") from None
    except Exception as exc:  # a user's syntax error or exception, reported in one line
        raise ConfigError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    base = read_config_file(path.parent / values["BASE_CONFIG"]) if "BASE_CONFIG" in values else {}
    return dict(base, **{k: v for k, v in values.items()
                         if not k.startswith("_") and k.islower() and not isinstance(v, types.ModuleType)})


def apply_overrides(values, assignments):
    """Return a copy of `values` with each 'KEY=VALUE' string of `assignments` applied (typed by RULES)."""
    out = dict(values)
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"--set {item}: expected KEY=VALUE")
        if key not in RULES:
            raise ConfigError(f"--set {item}: unknown setting '{key}'{_suggest(key)}")
        try:
            out[key] = RULES[key].parse(text.strip())
        except ValueError:
            raise ConfigError(f"--set {item}: {key} must be {RULES[key].kind.__name__}") from None
    return out


def _suggest(key):
    close = difflib.get_close_matches(key, RULES, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def validate(values, source="config.py"):
    """Check every setting's presence, type and range and the cross-setting rules; raise ConfigError on the first.

    Returns `values` unchanged when all is well.
    """
    for key in values:
        if key not in RULES:
            raise ConfigError(f"{source}: unknown setting '{key}'{_suggest(key)}")
    for key, rule in RULES.items():
        if key not in values:
            raise ConfigError(f"{source}: setting '{key}' is missing")
        problem = rule.problem(values[key])
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
    for key in ("softmax_net", "triplet_net"):
        if not resolve_path(v[key]).is_file():
            raise ConfigError(f"{source}: {key} '{v[key]}' does not exist")
    _check_teacher(v, source)
    _check_recipe_options(v, source)


def _check_recipe_options(v, source):
    """Cross-setting rules of the seeds' options: schedule file with lr -1, pinguo's own batches."""
    from_file = [key for key in ("softmax_lr", "triplet_lr") if v[key] == -1]
    if from_file:
        if not v["learning_rate_schedule_file"]:
            raise ConfigError(f"{source}: {from_file[0]} -1 (rates from a file) needs learning_rate_schedule_file")
        read_schedule_file(resolve_path(v["learning_rate_schedule_file"]))  # ConfigError naming file and line
    if v["selection"] == "pinguo" and v["extra_negatives"]:
        raise ConfigError(f"{source}: extra_negatives must be 0 with selection=pinguo (its batches bring their "
                          "own negatives)")


def _check_teacher(v, source):
    if not v["teacher"]:
        if v["softmax_weight"] == 0:
            raise ConfigError(f"{source}: softmax_weight is 0 and no teacher is set: stage 1 would have no loss")
        return
    if not resolve_path(v["teacher"]).is_file():
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


def load_settings(config_path=None, overrides=()):
    """Read config.py (default: the repository's), apply `--set` overrides, validate; return the settings dict."""
    config_path = Path(config_path) if config_path else ROOT / "config.py"
    return validate(apply_overrides(read_config_file(config_path), overrides), source=config_path.name)

"""Every setting declared once: its type, the values it takes, a line of help, and its place in a stage.

config.py assigns the values (its comments say more); `tripletloss.settings` checks them against these declarations,
and `python train.py --help` lists them. Allowed values come from the code that implements them.
"""
import math
from dataclasses import dataclass

from tripletloss.engine.optimizers import BUILDERS as OPTIMIZERS
from tripletloss.engine.precision import PRECISIONS
from tripletloss.engine.schedule import SCHEDULES
from tripletloss.losses import DISTILL_DISTANCES
from tripletloss.mining import ALL_STRATEGIES, BACKENDS

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Setting:
    """One setting: `key`, its `kind` (int, float, bool or str), what it must be, and a line of `help`.

    `lo`/`hi` bound a number (`lo` itself excluded when `lo_open`), `also` lists values accepted outside the bounds
    (a learning rate's -1: "use the schedule file"), `choices` the values of a str. A per-stage setting names its
    `stage` and its `role` there (stage_settings). `before` is the value that continues a run saved before the
    setting existed exactly (None: it always existed).
    """

    key: str
    kind: type
    help: str
    lo: float = None
    hi: float = None
    lo_open: bool = False
    also: tuple = ()
    choices: tuple = None
    stage: str = None
    role: str = None
    before: object = None

    def parse(self, text):
        """Convert a `--set` string to this setting's kind; raise ValueError if it does not parse."""
        if self.kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        return self.kind(text)

    def problem(self, value):
        """Return None if `value` is allowed, else a short description of what it must be."""
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
            return f"must be {self._lower_bound()}{self._also()}, got {value!r}"
        if self.hi is not None and value > self.hi:
            return f"must be <= {self.hi}, got {value!r}"
        return None

    def allowed(self):
        """What the setting takes, for --help: e.g. 'int >= 1', 'float in (0, 1]', 'cosine | mse'."""
        if self.choices:
            return " | ".join(self.choices)
        if self.lo is None:
            return self.kind.__name__
        if self.hi is None:
            return f"{self.kind.__name__} {self._lower_bound()}{self._also()}"
        return f"{self.kind.__name__} in {'(' if self.lo_open else '['}{self.lo}, {self.hi}]{self._also()}"

    def _lower_bound(self):
        return f"{'>' if self.lo_open else '>='} {self.lo}"

    def _also(self):
        return "".join(f" or {v}" for v in self.also)


#: A learning rate: > 0 and at most 1e30 (the optimizers apply rates in float32, max ~3.4e38), or -1: take the rate
#: from learning_rate_schedule_file (facenet's --learning_rate -1).
_LEARNING_RATE = {"lo": 0, "hi": 1e30, "lo_open": True, "also": (-1,), "role": "lr"}


#: The settings in config.py's order, under config.py's section titles.
SECTIONS = {
    "data": (
        Setting("data_dir", str, "image folder(s), one sub-folder per identity, ':'-joined ('' = synthetic faces)"),
        Setting("train_identities", str, "text file of identity names to train on ('' = all)"),
        Setting("exclude_identities", str, "text file of identity names never to train on", before=""),
        Setting("min_images_per_identity", int, "identities with fewer images are not trained on", lo=1, before=1),
        Setting("image_size", int, "network input in pixels (square); must match the YAML's input size", lo=16),
        Setting("resize_size", int, "images are resized to this, then cropped to image_size", lo=16),
        Setting("crop_fraction", float, "centre square fraction of each image kept before resizing", lo=0.05, hi=1.0),
        Setting("augment_flip", bool, "random horizontal flip when training"),
        Setting("random_rotate", bool, "random rotation by up to +-10 degrees when training", before=False),
        Setting("per_image_standardization", bool, "normalise each image by its own mean and std", before=False),
        Setting("num_workers", int, "processes decoding images", lo=0),
        Setting("decode_cache", bool, "decode each training image once into a uint8 cache under work_dir",
                before=True),
    ),
    "run": (
        Setting("work_dir", str, "each run gets work_dir/<stage>-<date>-<time>/"),
        Setting("device", str, "auto (cuda if available), cpu, cuda, cuda:1, ..."),
        Setting("seed", int, "seeds python, numpy and torch", lo=0, hi=2**32 - 1),
        Setting("deterministic", bool, "torch deterministic algorithms (bit-identical CPU reruns)"),
        Setting("channels_last", bool, "channels-last memory layout for the convolutions", before=False),
        Setting("precision", str, "bf16 autocast of forward passes over images (auto: where the device computes bf16 "
                "natively)", choices=PRECISIONS, before="fp32"),
        Setting("checkpoint_every_steps", int, "also checkpoint every N steps inside an epoch (0: epoch ends only)",
                lo=0),
        Setting("keep_checkpoints", int, "keep the newest N step/epoch checkpoints (plus best.pt)", lo=1),
        Setting("max_nonfinite_steps", int, "stop after this many consecutive steps with a NaN/inf loss or gradient",
                lo=1),
        Setting("log_every_steps", int, "TensorBoard / metrics.csv scalars every N steps", lo=1),
    ),
    "stage 1: softmax pretraining (fc9)": (
        Setting("softmax_net", str, "the softmax stage's network YAML", stage="softmax", role="net"),
        Setting("softmax_epochs", int, "epochs of the softmax stage", lo=0, stage="softmax", role="epochs"),
        Setting("softmax_batch_size", int, "images per softmax batch", lo=2, stage="softmax", role="batch_size"),
        Setting("softmax_lr", float, "base learning rate (-1: from learning_rate_schedule_file)", stage="softmax",
                **_LEARNING_RATE),
        Setting("softmax_label_smoothing", float, "label smoothing of the cross-entropy", lo=0.0, hi=0.99),
        Setting("finetune_freeze_epochs", int, "--finetune: epochs training only the new classifier", lo=0),
        Setting("finetune_unfreeze_from", str, "--finetune: then train every layer from this one on ('' = all)"),
        Setting("softmax_weight", float, "weight of the cross-entropy (0 with a teacher: distillation only)", lo=0),
        Setting("center_loss", float, "center loss weight (0: off)", lo=0),
        Setting("center_loss_alpha", float, "each step moves a class centre (1 - alpha) of the way to its prelogits",
                lo=0.0, hi=1.0),
        Setting("prelogits_norm", float, "weight of the batch mean of the prelogits' p-norm (0: off)", lo=0),
        Setting("prelogits_norm_p", float, "the p of that norm", lo=1.0),
        Setting("teacher", str, "teacher checkpoint to distil from ('' = no distillation)"),
        Setting("teacher_data_dir", str, "the teacher's copies of the images, one root per data_dir root"),
        Setting("teacher_weight", float, "weight of the distillation term", lo=0),
        Setting("teacher_loss", str, "distance to the teacher's descriptors", choices=tuple(DISTILL_DISTANCES)),
    ),
    "stage 2: triplet training (fc9_1)": (
        Setting("triplet_net", str, "the triplet stage's network YAML", stage="triplet", role="net"),
        Setting("triplet_epochs", int, "epochs of the triplet stage", lo=0, stage="triplet", role="epochs"),
        Setting("triplet_lr", float, "base learning rate (-1: from learning_rate_schedule_file)", stage="triplet",
                **_LEARNING_RATE),
        Setting("embedding_size", int, "width of the L2-normalised embedding", lo=1),
        Setting("identities_per_batch", int, "P: identities in each batch", lo=2),
        Setting("images_per_identity", int, "K: images of each identity in each batch", lo=2),
        Setting("margin", float, "triplet margin, on squared euclidean distances between unit vectors", lo=0,
                lo_open=True),
        Setting("selection", str, "triplet mining strategy", choices=ALL_STRATEGIES),
        Setting("pinguo_triplets", int, "selection=pinguo: triplets T per batch of 3T images", lo=1, before=10),
        Setting("extra_negatives", int, "images of identities outside the batch, as negatives only", lo=0, before=0),
        Setting("mining_backend", str, "where triplets are mined", choices=BACKENDS),
        Setting("batches_per_epoch", int, "batches per epoch (0: about one pass over the images)", lo=0),
        Setting("cache_features", bool, "train on frozen-backbone features computed once"),
    ),
    "optimisation (both stages)": (
        Setting("optimizer", str, "torch's sgd and adam, or facenet's (upper case)", choices=tuple(OPTIMIZERS)),
        Setting("momentum", float, "sgd's momentum", lo=0.0, hi=1.0),
        Setting("weight_decay", float, "L2 weight decay", lo=0),
        Setting("lr_schedule", str, "learning-rate schedule after the warm-up", choices=tuple(SCHEDULES)),
        Setting("lr_step_epochs", int, "step schedule: multiply by lr_gamma every N epochs", lo=1),
        Setting("lr_gamma", float, "the step schedule's factor", lo=0.0, hi=1.0, lo_open=True),
        Setting("warmup_epochs", float, "linear warm-up from 0, in epochs", lo=0),
        Setting("grad_clip", float, "clip the gradient norm to this (0: off)", lo=0),
        Setting("learning_rate_decay_epochs", int, "exponential schedule: multiply by its factor every N epochs", lo=1,
                before=100),
        Setting("learning_rate_decay_factor", float, "the exponential schedule's factor", lo=0.0, hi=1.0,
                lo_open=True, before=1.0),
        Setting("learning_rate_schedule_file", str, "facenet's 'epoch: lr' file, used by a stage whose lr is -1",
                before=""),
        Setting("moving_average_decay", float, "exponential moving average of the weights (0: off)", lo=0.0, hi=1.0,
                before=0.0),
        Setting("health_intervals", int, "warn when a training problem lasts N logging intervals (0: off)", lo=0,
                before=0),
    ),
    "evaluation during training": (
        Setting("lfw_dir", str, "folder the pairs file's names refer to ('' = no evaluation)"),
        Setting("pairs", str, "LFW-format pairs file, evaluated every eval_every_epochs"),
        Setting("eval_every_epochs", int, "evaluate every N epochs", lo=1),
        Setting("eval_flip", bool, "flip test-time augmentation"),
    ),
}

#: {key: Setting} of every setting, in config.py's order.
SCHEMA = {setting.key: setting for section in SECTIONS.values() for setting in section}

_STAGE_KEYS = {(s.stage, s.role): s.key for s in SCHEMA.values() if s.stage}


def stage_key(stage, role):
    """Return the key of training stage `stage`'s setting `role`, e.g. ("softmax", "lr") -> "softmax_lr"."""
    return _STAGE_KEYS[stage, role]


def stage_keys(role):
    """Return the keys of every stage's setting `role` (e.g. "net": softmax_net, triplet_net), in SCHEMA order."""
    return [key for (_, each), key in _STAGE_KEYS.items() if each == role]


def stage_settings(settings, stage):
    """Return {role: value} of training stage `stage`'s own settings in `settings`: net, epochs, lr (and the
    softmax stage's batch_size)."""
    return {role: settings[key] for (each, role), key in _STAGE_KEYS.items() if each == stage}


def describe(values):
    """Return --help's text listing every setting by section: `KEY = VALUE (allowed): help` with its value in
    {key: value} `values` (left out for a key `values` lacks)."""
    lines = []
    for title, section in SECTIONS.items():
        lines.append(f"  {title}:")
        for s in section:
            value = f" = {values[s.key]!r}" if s.key in values else ""
            lines.append(f"    {s.key}{value} ({s.allowed()}): {s.help}")
    return "\n".join(lines)

"""What both stages share: building the net, restoring weights, the checkpoint record and periodic evaluation."""
import functools
import sys

import numpy as np
import torch

from tripletloss.data.folders import read_identity_list, scan_folders
from tripletloss.engine.checkpoint import (
    FORMAT,
    load_checkpoint,
    restore_layers,
    summarise,
)
from tripletloss.errors import CheckpointError, ConfigError, NetSpecError, UserError
from tripletloss.net import build_net
from tripletloss.net.spec import input_of
from tripletloss.prepare.record import with_alignment
from tripletloss.settings import resolve_path
from tripletloss.settings_schema import SCHEMA, stage_settings


def load_training_data(settings):
    """Return (paths, labels, class_names) of the training images named by the settings.

    An empty data_dir means the built-in synthetic faces (generated on first use).
    """
    data_dir = settings["data_dir"]
    if not data_dir:
        from tripletloss.data.synthetic import ensure_default_dataset
        data_dir = str(ensure_default_dataset())
    wanted = read_identity_list(settings["train_identities"]) if settings["train_identities"] else None
    excluded = read_identity_list(settings["exclude_identities"]) if settings["exclude_identities"] else ()
    if wanted is not None:
        check_wanted(wanted, scan_folders(data_dir)[2], settings["train_identities"], data_dir)
    data = scan_folders(data_dir, wanted, excluded, settings["min_images_per_identity"])
    return report_training_data(data, data_dir)


def check_wanted(wanted, present, list_file, data_dir):
    """Warn about names of `list_file` (train_identities) that are not among the identities `present` under
    `data_dir`; raise UserError when none of them is."""
    absent = sorted(set(wanted) - set(present))
    if len(absent) == len(set(wanted)):
        raise UserError(f"train_identities {list_file}: none of its {len(absent)} names is an identity folder with "
                        f"images under {data_dir}")
    if absent:
        print(f"warning: {len(absent)} names in {list_file} have no images under {data_dir} "
              f"(first: {', '.join(absent[:5])})", file=sys.stderr)


def report_training_data(data, data_dir):
    """Print what training runs on (identities, images, identities with one image) and return `data`, a
    scan_folders() triple."""
    paths, labels, names = data
    singles = int(np.sum(np.bincount(labels, minlength=len(names)) == 1))
    print(f"training data {data_dir}: {len(names)} identities, {len(paths)} images, {singles} identities with "
          f"one image")
    return data


def check_input_size(settings, key):
    """Raise ConfigError unless the YAML of setting `key` takes image_size input (checked before data is read)."""
    size = input_of(resolve_path(settings[key])).get("size")
    if type(size) is not int:
        raise NetSpecError(f"{settings[key]}: input size must be a whole number, got {size!r}")
    if size != settings["image_size"]:
        raise ConfigError(f"image_size {settings['image_size']} differs from the input size {size} of "
                          f"{settings[key]} (set image_size={size} or change the YAML)")


def synthetic_validation():
    """Settings evaluating on the built-in synthetic validation identities: {lfw_dir, pairs}."""
    from tripletloss.data.synthetic import ensure_default_validation
    val_dir, pairs = ensure_default_validation()
    print(f"Evaluating on the built-in SYNTHETIC validation identities ({pairs})")
    return {"lfw_dir": str(val_dir), "pairs": str(pairs)}


#: The outputs each stage's objective reads from its net.
NEEDED_OUTPUTS = {"softmax_net": ("logits",), "triplet_net": ("embedding",)}


def build_stage_net(settings, key, variables):
    """Build the net of YAML setting `key` with `variables`; return it. NetSpecError when its `outputs` lack one
    the stage reads (NEEDED_OUTPUTS), before any run directory exists."""
    check_input_size(settings, key)
    net = build_net(resolve_path(settings[key]), variables)
    missing = [name for name in NEEDED_OUTPUTS[key] if name not in net.spec["outputs"]]
    if missing:
        raise NetSpecError(f"{settings[key]}: outputs must name a '{missing[0]}' blob (the {SCHEMA[key].stage} stage "
                           f"reads it), got {sorted(net.spec['outputs']) or 'none'}")
    return net


def init_from_checkpoint(net, path, skip=()):
    """Restore every layer of `net` that matches checkpoint `path` by name and shape, except layers in `skip`.

    Prints which layers were restored, re-initialised or skipped; returns the checkpoint dict. Raises
    CheckpointError, naming the mismatched layers and shapes, when no layer at all is restored (another
    architecture) or when a frozen layer (lr_mult 0, e.g. stage 2's backbone) is not: it would stay random.
    """
    ckpt = load_checkpoint(path)
    state = {k: v for k, v in ckpt["model"].items() if k.split(".", 1)[0] not in skip}
    report = restore_layers(net, state, path)
    missing = [name for name in net.frozen_layers() if name in report["reinitialised"]]
    if not report["restored"] or missing:
        about = [line for line in report["skipped"] if not missing or line.split(".", 1)[0] in missing]
        what = f"frozen layers {', '.join(missing)} would stay random" if missing else "no layer fits this network"
        raise CheckpointError(f"{path}: {what} ({summarise(about or ['they are not in it'])})")
    print(f"from {path}: restored {len(report['restored'])} layers ({', '.join(report['restored'])})")
    print(f"  re-initialised: {', '.join(report['reinitialised']) or 'none'}")
    for line in report["skipped"] + [f"{name}: re-initialised on purpose" for name in skip]:
        print(f"  skipped {line}")
    return ckpt


class Job:
    """A stage's part of training: subclasses set `source`, implement `objective` and may override phases."""

    stage = None
    finetuning = False  # initialised from another model with a freeze schedule (softmax --finetune)

    def __init__(self, net, settings, preprocess, classes, variables, device):
        layout = torch.channels_last if settings["channels_last"] else torch.contiguous_format
        self.net, self.settings = net.to(device, memory_format=layout), settings
        self.preprocess = with_alignment(preprocess, settings["data_dir"])  # the template inference aligns with
        self.classes, self.variables, self.device = classes, variables, device
        self.model = self.net  # what runs the forward pass: the net, or its DDP wrapper (engine.distributed.wrap)
        self.spec_mults = {layer["name"]: layer["lr_mult"] for layer in net.spec["layers"]}
        self.calibration = None  # from the latest validation, stored with the model (evaluation.calibration)
        self.base_lr = stage_settings(settings, self.stage)["lr"]

    @functools.cached_property
    def steps_per_epoch(self):
        """Batches per epoch (the same every epoch)."""
        return len(self.source.sampler.batches(0))

    def phase(self, epoch):
        """Name of the freeze phase of `epoch` (one phase unless fine-tuning)."""
        return "all"

    def apply_phase(self, phase):
        """Set the net's lr multipliers for `phase`."""
        self.net.set_lr_mults(self.spec_mults)

    def model_record(self):
        """Return the inference part of a checkpoint: net spec, weights, preprocess, classes."""
        record = {"format": FORMAT, "stage": self.stage, "net": self.net.spec, "variables": self.variables,
                  "model": self.net.layers.state_dict(), "preprocess": self.preprocess, "classes": self.classes,
                  "finetuned": self.finetuning}
        return {**record, "calibration": self.calibration} if self.calibration else record

    def evaluate(self, epoch):
        """Verification metrics on lfw_dir/pairs after `epoch` when configured and due; else None."""
        s = self.settings
        if not s["lfw_dir"] or (epoch + 1) % s["eval_every_epochs"]:
            return None
        from tripletloss.evaluation.calibration import calibration_from
        from tripletloss.evaluation.verification import verify
        from tripletloss.inference import Embedder
        metrics, heldout, issame = verify(Embedder(self.net, self.preprocess, self.device), s["lfw_dir"],
                                          s["pairs"], flip=s["eval_flip"], missing="skip")
        self.calibration = calibration_from(metrics, heldout, issame, flip=s["eval_flip"], source=s["pairs"])
        if metrics["skipped_pairs"]:
            print(f"validation: {metrics['skipped_pairs']} pairs of {s['pairs']} left out (missing images), as "
                  f"`evaluate --skip-missing` does", file=sys.stderr)
        return {k: metrics[k] for k in ("accuracy", "val", "auc", "eer")}

    def objective(self, inputs, labels, step):
        """Return (loss tensor, {stat: float}) for one batch."""
        raise NotImplementedError

    def after_step(self):
        """Called after each optimizer step that was taken (not after a skipped non-finite one)."""

    def training_state(self):
        """Tensors besides the net and optimizer that a resumable checkpoint must hold (a dict)."""
        return {}

    def load_training_state(self, state):
        """Restore what training_state() returned."""


def step_generator(seed, step, device):
    """A torch.Generator on `device` seeded from (seed, step): mining draws are reproducible and resumable."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)

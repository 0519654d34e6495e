"""The stage interface the training loop (engine/loop.py) drives, and what both stages share.

A stage is built ready by stages.factory.build_stage, which does every read, cache and note on the way: the
classes here do no I/O. The loop owns what a stage does not: the model that runs the forward pass (the net, or
its DistributedDataParallel wrapper), the optimizer and the learning rate.
"""
import abc
import sys

from tripletloss.console import say
from tripletloss.engine.checkpoint import FORMAT

#: The phase in which every layer trains that the YAML leaves trainable (lr_mult > 0).
ALL = "all"


class Stage(abc.ABC):
    """One stage of training. What it provides to the loop:

    - `name` ("softmax", "triplet"), `net` (a tripletloss.net.Net on the device) and `batches` (a
      stages.batches.Batches: set_epoch, len, per_epoch, iterating yields Batch tuples);
    - phases: `phase(epoch)` names which layers train in `epoch`, `apply_phase(name)` sets the net's lr multipliers
      for it (the loop builds a new optimizer when the phase changes), `phase_from_checkpoint(name)` reads a saved
      phase name;
    - `objective(model, batch, step)`: (loss, stats) of one Batch, `model` being the net or the loop's wrapper;
    - `after_step()`, `training_state()` and `load_training_state(state)`: state besides weights and optimizer;
    - `evaluate(epoch)`: validation metrics or None; `model_record()`: the inference part of a checkpoint.

    Subclasses set `name` (their YAML setting is settings_schema's `net` role of it) and implement
    `required_outputs` and `objective`.
    """

    name = None
    finetuning = False  # initialised from another model with a freeze schedule (softmax --finetune)

    def __init__(self, net, batches, settings, preprocess, classes, yaml_variables, device):
        """`net` on `device`, trained on `batches`; `preprocess` (the inference preprocess, alignment included),
        `classes` (identity names) and `yaml_variables` (the values of the YAML's $variables) go into the model
        record."""
        self.net, self.batches, self.settings, self.device = net, batches, settings, device
        self.preprocess, self.classes, self.yaml_variables = preprocess, classes, yaml_variables
        self.yaml_lr_mults = {layer["name"]: layer["lr_mult"] for layer in net.spec["layers"]}
        self.calibration = None  # from the latest validation, stored with the model (evaluation.calibration)

    @classmethod
    @abc.abstractmethod
    def required_outputs(cls, settings, available):
        """{output name: what reads it} of the outputs this stage reads from its net under `settings`;
        `available` is the net's `outputs` mapping (where the stage can use one output or another)."""

    def phase(self, epoch):
        """Name of the phase of `epoch`: which layers train ("all" unless a subclass freezes some)."""
        return ALL

    def phase_from_checkpoint(self, name):
        """The phase a checkpoint saved as `name`, in today's phase names."""
        return name

    def first_trained_layer(self, phase):
        """The first layer `phase` trains (the layers before it are frozen); None: the YAML's own lr_mults."""
        return None

    def apply_phase(self, phase):
        """Set the net's lr multipliers for `phase`: the YAML's from its first trained layer on, 0 before it."""
        first = self.first_trained_layer(phase)
        start = list(self.yaml_lr_mults).index(first) if first else 0
        self.net.set_lr_mults({name: (mults if i >= start else [0.0, 0.0])
                               for i, (name, mults) in enumerate(self.yaml_lr_mults.items())})

    def model_record(self):
        """Return the inference part of a checkpoint: net spec, weights, preprocess, classes."""
        record = {"format": FORMAT, "stage": self.name, "net": self.net.spec, "variables": self.yaml_variables,
                  "model": self.net.layers.state_dict(), "preprocess": self.preprocess, "classes": self.classes,
                  "finetuned": self.finetuning}
        return {**record, "calibration": self.calibration} if self.calibration else record

    def evaluate(self, epoch):
        """Verification metrics on lfw_dir/pairs after `epoch` when configured and due; else None."""
        settings = self.settings
        if not settings["lfw_dir"] or (epoch + 1) % settings["eval_every_epochs"]:
            return None
        from tripletloss.evaluation.calibration import calibration_from
        from tripletloss.evaluation.verification import verify
        from tripletloss.inference import Embedder
        pairs, flip = settings["pairs"], settings["eval_flip"]
        metrics, heldout, issame = verify(Embedder(self.net, self.preprocess, self.device), settings["lfw_dir"],
                                          pairs, flip=flip, missing="skip")
        self.calibration = calibration_from(metrics, heldout, issame, flip=flip, source=pairs)
        if metrics["skipped_pairs"]:
            say(f"validation: {metrics['skipped_pairs']} pairs of {pairs} left out (missing images), as "
                f"`evaluate --skip-missing` does", sys.stderr)
        return {k: metrics[k] for k in ("accuracy", "val", "auc", "eer")}

    @abc.abstractmethod
    def objective(self, model, batch, step):
        """Return (loss tensor, {stat: float}) of `batch` (a Batch) at optimizer step `step`, run through `model`
        (the net or its DDP wrapper)."""

    def after_step(self):
        """Called after each optimizer step that was taken (not after a skipped non-finite one)."""

    def training_state(self):
        """Tensors besides the net and optimizer that a resumable checkpoint must hold (a dict)."""
        return {}

    def load_training_state(self, state):
        """Restore what training_state() returned."""

"""Stage 1: the backbone trained as a softmax classifier (`fc9`) over the training identities.

Optional extra terms (config.py): facenet's center loss and prelogits norm, and distillation of a teacher
network's descriptors into the student's `distill` output.
"""
from tripletloss.losses import distill_loss, margin_cross_entropy, prelogits_norm
from tripletloss.stages.base import ALL, Stage
from tripletloss.stages.centers import Centers

CLASSIFIER = "fc9"
#: Fine-tuning's first phase: the backbone (every layer before fc9) frozen, fc9 and any layer after it trained.
FROZEN_BACKBONE = "frozen_backbone"
#: Phases "from_<layer>": the layers before <layer> frozen (finetune_unfreeze_from).
FROM = "from_"


def prelogits_output(available):
    """The output center loss and prelogits norm read: "prelogits" when the net's `available` outputs have one,
    else "embedding"."""
    return "prelogits" if "prelogits" in available else "embedding"


class SoftmaxStage(Stage):
    """Cross-entropy training of the whole net; when fine-tuning, the classifier first, then unfrozen."""

    name = "softmax"

    def __init__(self, net, batches, settings, preprocess, classes, yaml_variables, device, finetuning=False):
        """Stage's arguments, and `finetuning`: the net starts from another model (with a freeze schedule)."""
        super().__init__(net, batches, settings, preprocess, classes, yaml_variables, device)
        self.finetuning = finetuning
        self.outputs = list(self.required_outputs(settings, net.spec["outputs"]))
        self.prelogits = prelogits_output(net.spec["outputs"])
        self.logit_margin = logit_margin(net)
        self.weights = {"softmax": settings["softmax_weight"], "center_loss": settings["center_loss"],
                        "prelogits_norm": settings["prelogits_norm"], "teacher": settings["teacher_weight"]}
        self.centers = Centers(len(classes), settings["center_loss_alpha"]) if settings["center_loss"] else None

    @classmethod
    def required_outputs(cls, settings, available):
        """logits always; the prelogits (or embedding) with center_loss or prelogits_norm; distill with a
        teacher."""
        needed = {"logits": "the softmax loss"}
        if settings["center_loss"] or settings["prelogits_norm"]:
            needed[prelogits_output(available)] = "center_loss / prelogits_norm"
        if settings["teacher"]:
            needed["distill"] = "teacher (use prototxt_like/softmax_distill.yaml)"
        return needed

    def phase(self, epoch):
        """When fine-tuning: "frozen_backbone" for the first finetune_freeze_epochs, then "from_<layer>" for
        finetune_unfreeze_from (or "all" when it is empty). Without fine-tuning: "all"."""
        if not self.finetuning:
            return ALL
        if epoch < self.settings["finetune_freeze_epochs"]:
            return FROZEN_BACKBONE
        unfreeze = self.settings["finetune_unfreeze_from"]
        return FROM + unfreeze if unfreeze else ALL

    def phase_from_checkpoint(self, name):
        """Today's name of a saved phase: older checkpoints say "head" (the frozen backbone) and "body" (the phase
        after it, or the only one without fine-tuning)."""
        old = {"head": FROZEN_BACKBONE, "body": self.phase(self.settings["finetune_freeze_epochs"])}
        return old.get(name, name)

    def first_trained_layer(self, phase):
        """fc9 for "frozen_backbone", <layer> for "from_<layer>", None (the YAML's lr_mults) for "all"."""
        if phase == FROZEN_BACKBONE:
            return CLASSIFIER
        return phase[len(FROM):] if phase.startswith(FROM) else None

    def objective(self, model, batch, step):
        """Weighted sum of the label-smoothed cross-entropy of fc9's logits and the extra terms switched on.

        Stats: batch accuracy, and each term's unweighted value when there are several.
        """
        out = model(batch.inputs, self.outputs)
        settings, labels = self.settings, batch.labels
        terms = {"softmax": margin_cross_entropy(out["logits"], labels, self.logit_margin,
                                                 settings["softmax_label_smoothing"])}
        if self.centers:
            terms["center_loss"] = self.centers.loss(out[self.prelogits], labels)
        if settings["prelogits_norm"]:
            terms["prelogits_norm"] = prelogits_norm(out[self.prelogits], settings["prelogits_norm_p"])
        if batch.teacher_descriptors is not None:
            terms["teacher"] = distill_loss(out["distill"], batch.teacher_descriptors, batch.has_teacher,
                                            settings["teacher_loss"])
        loss = sum(self.weights[name] * term for name, term in terms.items())
        stats = {"accuracy": (out["logits"].argmax(1) == labels).float().mean().item()}
        if len(terms) > 1:
            stats.update({name: term.item() for name, term in terms.items()})
        return loss, stats

    def after_step(self):
        """Move the class centres (center loss) once the optimizer has stepped."""
        if self.centers:
            self.centers.commit()

    def training_state(self):
        """The class centres, for resumable checkpoints."""
        return self.centers.state() if self.centers else {}

    def load_training_state(self, state):
        """Restore the class centres from a checkpoint's training_state()."""
        if self.centers:
            self.centers.load(state, self.device)


def logit_margin(net):
    """The margin (in logits) that training subtracts from the true class's logit: the `logits` layer's
    `logit_margin` (a `cosine` layer with a margin), else 0."""
    top = net.spec["outputs"]["logits"]
    layer = next(layer["name"] for layer in net.spec["layers"] if layer["top"] == top)
    return getattr(net.layers[layer], "logit_margin", 0.0)

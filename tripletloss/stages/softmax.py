"""Stage 1: the backbone trained as a softmax classifier (`fc9`) over the training identities.

Optional extra terms (config.py): facenet's center loss and prelogits norm, and distillation of a teacher
network's descriptors into the student's `distill` output.
"""
import torch

from tripletloss.data.dataset import FaceDataset
from tripletloss.data.samplers import ShuffledBatches
from tripletloss.data.transforms import inherit_preprocess, make_preprocess
from tripletloss.engine.distributed import main_first
from tripletloss.errors import ConfigError
from tripletloss.losses import distill_loss, margin_cross_entropy, prelogits_norm
from tripletloss.stages.batches import TeacherBatches, image_batches
from tripletloss.stages.centers import Centers
from tripletloss.stages.job import Job, build_stage_net, init_from_checkpoint
from tripletloss.stages.teacher import teacher_targets

CLASSIFIER = "fc9"


class SoftmaxJob(Job):
    """Cross-entropy training of the whole net; with a fine-tune checkpoint, head first, then unfrozen."""

    stage = "softmax"

    def __init__(self, settings, data, device, finetune=None, rank=0, world_size=1):
        paths, labels, classes = data
        if len(classes) < 2:
            raise ConfigError(f"data_dir: the softmax stage needs images of at least 2 identities, found "
                              f"{len(classes)} ({', '.join(classes)})")
        variables = {"num_classes": len(classes), "embedding_size": settings["embedding_size"]}
        net = build_stage_net(settings, "softmax_net", variables)
        preprocess = make_preprocess(settings)
        self.finetuning = finetune is not None
        if self.finetuning:
            saved = init_from_checkpoint(net, finetune, skip=(CLASSIFIER,))["preprocess"]
            preprocess = inherit_preprocess(saved, settings, finetune)
        super().__init__(net, settings, preprocess, classes, variables, device)
        unfreeze = settings["finetune_unfreeze_from"]
        if self.finetuning and unfreeze and unfreeze not in self.spec_mults:
            raise ConfigError(f"finetune_unfreeze_from: no layer '{unfreeze}' in {settings['softmax_net']}")
        self.outputs, self.prelogits = self._outputs()
        self.logit_margin = logit_margin(self.net)
        self.weights = {"softmax": settings["softmax_weight"], "center_loss": settings["center_loss"],
                        "prelogits_norm": settings["prelogits_norm"], "teacher": settings["teacher_weight"]}
        self.centers = Centers(len(classes), settings["center_loss_alpha"]) if settings["center_loss"] else None
        sampler = ShuffledBatches(len(paths), settings["softmax_batch_size"], settings["seed"], rank, world_size)
        if settings["teacher"]:  # decoded per epoch (no decode cache): the teacher's rows follow the loaded images
            targets = main_first(teacher_targets, settings, paths, device)  # rank 0 computes, the others load
            self._check_distill_width(targets[0].shape[2])
            dataset = FaceDataset(paths, labels, preprocess, train=True, random_flip=settings["augment_flip"],
                                  random_rotate=settings["random_rotate"])
            self.source = TeacherBatches(dataset, sampler, settings["num_workers"], device, *targets)
        else:
            self.source = image_batches(paths, labels, preprocess, sampler, settings, device, progress=rank == 0)

    def _outputs(self):
        """(outputs the objective needs, name of the prelogits output); ConfigError naming a missing one."""
        s, available = self.settings, self.net.spec["outputs"]
        prelogits = "prelogits" if "prelogits" in available else "embedding"
        needed = {"logits": "the softmax loss"}
        if s["center_loss"] or s["prelogits_norm"]:
            needed[prelogits] = "center_loss / prelogits_norm"
        if s["teacher"]:
            needed["distill"] = "teacher (use prototxt_like/softmax_distill.yaml)"
        for name, why in needed.items():
            if name not in available:
                raise ConfigError(f"softmax_net {s['softmax_net']}: no '{name}' output, needed by {why}")
        return list(needed), prelogits

    @torch.no_grad()
    def _check_distill_width(self, width):
        """ConfigError unless the net's `distill` output has the teacher's descriptor width."""
        was_training, size = self.net.training, self.net.input_size
        channels = self.net.spec["input"].get("channels", 3)
        zeros = torch.zeros(2, channels, size, size, device=self.device)
        own = self.net.eval()(zeros, ["distill"])["distill"].flatten(1).shape[1]
        self.net.train(was_training)
        if own != width:
            raise ConfigError(f"softmax_net {self.settings['softmax_net']}: its 'distill' output is {own}-d but "
                              f"the teacher's descriptor is {width}-d")

    def phase(self, epoch):
        """'head' (only fc9 trains) for the first finetune_freeze_epochs when fine-tuning, else 'body'."""
        return "head" if self.finetuning and epoch < self.settings["finetune_freeze_epochs"] else "body"

    def apply_phase(self, phase):
        """Freeze per phase: 'head' trains fc9 only; 'body' trains from finetune_unfreeze_from onward."""
        names = list(self.spec_mults)
        if not self.finetuning:
            first = 0
        elif phase == "head":
            first = names.index(CLASSIFIER)
        else:
            first = names.index(self.settings["finetune_unfreeze_from"]) \
                if self.settings["finetune_unfreeze_from"] else 0
        self.net.set_lr_mults({n: (m if i >= first else [0.0, 0.0])
                               for i, (n, m) in enumerate(self.spec_mults.items())})

    def objective(self, images, labels, step):
        """Weighted sum of the label-smoothed cross-entropy of fc9's logits and the extra terms switched on.

        `labels` is the label tensor, or (labels, teacher descriptors, has_teacher) from TeacherBatches. Stats:
        batch accuracy, and each term's unweighted value when there are several.
        """
        labels, *teacher = labels if isinstance(labels, tuple) else (labels,)
        out = self.model(images, self.outputs)
        s = self.settings
        terms = {"softmax": margin_cross_entropy(out["logits"], labels, self.logit_margin,
                                                 s["softmax_label_smoothing"])}
        if self.centers:
            terms["center_loss"] = self.centers.loss(out[self.prelogits], labels)
        if s["prelogits_norm"]:
            terms["prelogits_norm"] = prelogits_norm(out[self.prelogits], s["prelogits_norm_p"])
        if teacher:
            terms["teacher"] = distill_loss(out["distill"], *teacher, s["teacher_loss"])
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
    blob = net.spec["outputs"]["logits"]
    layer = next(layer["name"] for layer in net.spec["layers"] if layer["top"] == blob)
    return getattr(net.layers[layer], "logit_margin", 0.0)

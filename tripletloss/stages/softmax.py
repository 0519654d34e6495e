"""Stage 1: the backbone trained as a softmax classifier (`fc9`) over the training identities."""
import torch.nn.functional as F

from tripletloss.data.dataset import FaceDataset
from tripletloss.data.samplers import ShuffledBatches
from tripletloss.data.transforms import inherit_preprocess, make_preprocess
from tripletloss.errors import ConfigError
from tripletloss.stages.batches import ImageBatches
from tripletloss.stages.job import Job, build_stage_net, init_from_checkpoint

CLASSIFIER = "fc9"


class SoftmaxJob(Job):
    """Cross-entropy training of the whole net; with a fine-tune checkpoint, head first, then unfrozen."""

    stage = "softmax"

    def __init__(self, settings, data, device, finetune=None, rank=0, world_size=1):
        paths, labels, classes = data
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
        dataset = FaceDataset(paths, labels, preprocess, train=True, random_flip=settings["augment_flip"],
                              random_rotate=settings["random_rotate"])
        sampler = ShuffledBatches(len(paths), settings["softmax_batch_size"], settings["seed"], rank, world_size)
        self.source = ImageBatches(dataset, sampler, settings["num_workers"], device)

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
        """Label-smoothed cross-entropy of fc9's logits; stats: batch accuracy."""
        logits = self.model(images, ["logits"])["logits"]
        loss = F.cross_entropy(logits, labels, label_smoothing=self.settings["softmax_label_smoothing"])
        return loss, {"accuracy": (logits.argmax(1) == labels).float().mean().item()}

"""Stage 2: the stage-1 backbone frozen, a linear `fc9_1` (L2-normalised) trained with triplet loss.

Triplets are selected online inside each P x K batch by `tripletloss.mining.select_triplets` (with selection
"pinguo": inside each of pinguo's anchor / positives / negatives batches, with its loss). When the backbone
is frozen its features are computed once per image (centre crop and its mirror) and epochs run on those
(stages.features).
"""
import torch

from tripletloss.data.samplers import PinguoBatches, PKBatches
from tripletloss.engine.distributed import gather_batch
from tripletloss.losses import pinguo_loss, triplet_loss
from tripletloss.mining import select_triplets
from tripletloss.stages.base import Stage


class TripletStage(Stage):
    """Triplet-loss training of the layers the YAML leaves trainable (fc9_1 by default)."""

    name = "triplet"

    @classmethod
    def required_outputs(cls, settings, available):
        """The embedding, which triplets are mined on."""
        return {"embedding": "the triplet loss"}

    def objective(self, model, batch, step):
        """Triplet loss over the triplets mined in this (global) batch; stats: active fraction, mean d_ap and d_an."""
        settings = self.settings
        emb = model(batch.inputs, ["embedding"])["embedding"]
        emb, labels = gather_batch(emb, batch.labels)  # mine over every rank's part of the global batch
        generator = mining_generator(settings["seed"], step, emb.device)
        a, p, n = select_triplets(emb.detach(), labels, settings["selection"], margin=settings["margin"],
                                  backend=settings["mining_backend"], generator=generator)
        loss_of = pinguo_loss if settings["selection"] == "pinguo" else triplet_loss
        return loss_of(emb, a, p, n, settings["margin"])


def mining_generator(seed, step, device):
    """A torch.Generator on `device` seeded from (seed, step): mining draws are reproducible and resumable."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)


def make_sampler(settings, labels, rank=0, world_size=1):
    """Stage 2's batch sampler: pinguo's batches for selection "pinguo", else P x K (plus extra negatives)."""
    seed, per_epoch = settings["seed"], settings["batches_per_epoch"]
    if settings["selection"] == "pinguo":
        return PinguoBatches(labels, settings["pinguo_triplets"], seed, per_epoch, rank, world_size)
    return PKBatches(labels, settings["identities_per_batch"], settings["images_per_identity"], seed, per_epoch,
                     rank, world_size, settings["extra_negatives"])

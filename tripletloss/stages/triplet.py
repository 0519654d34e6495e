"""Stage 2: the stage-1 backbone frozen, a linear `fc9_1` (L2-normalised) trained with triplet loss.

Triplets are selected online inside each P x K batch by `tripletloss.mining.select_triplets` (with selection
"pinguo": inside each of pinguo's anchor / positives / negatives batches, with its loss). When the backbone
is frozen its features are computed once per image (centre crop and its mirror) and epochs run on those.
"""
import torch
from tqdm import tqdm

from tripletloss.data.dataset import FaceDataset
from tripletloss.data.samplers import PinguoBatches, PKBatches
from tripletloss.data.transforms import inherit_preprocess
from tripletloss.data.workers import make_loader
from tripletloss.engine.distributed import gather_batch
from tripletloss.engine.run_dir import final_model
from tripletloss.inference import batch_outputs
from tripletloss.losses import pinguo_loss, triplet_loss
from tripletloss.mining import select_triplets
from tripletloss.stages.batches import FeatureBatches, image_batches
from tripletloss.stages.job import (
    Job,
    build_stage_net,
    init_from_checkpoint,
    step_generator,
)


class TripletJob(Job):
    """Triplet-loss training of the layers the YAML leaves trainable (fc9_1 by default)."""

    stage = "triplet"

    def __init__(self, settings, data, device, finetune=None, rank=0, world_size=1, progress=True):
        paths, labels, classes = data
        variables = {"embedding_size": settings["embedding_size"]}
        net = build_stage_net(settings, "triplet_net", variables)
        init = finetune or final_model(settings["work_dir"], "softmax")
        preprocess = inherit_preprocess(init_from_checkpoint(net, init)["preprocess"], settings, init)
        super().__init__(net, settings, preprocess, classes, variables, device)
        sampler = make_sampler(settings, labels, rank, world_size)
        progress = progress and rank == 0  # one progress bar and note per run, not one per process
        if sampler.singletons and progress:
            print(f"note: {sampler.singletons} identities with a single image are not used as triplet anchors")
        blob = self.cacheable_blob()
        if blob and settings["cache_features"] and not settings["random_rotate"]:  # the cache holds no rotations
            features, bad = self.cache_features(blob, paths, labels, progress)
            self.source = FeatureBatches(features, blob, labels, sampler, settings["augment_flip"], device, bad)
        else:
            self.source = image_batches(paths, labels, preprocess, sampler, settings, device, progress)

    def cacheable_blob(self):
        """The `features` output blob if every layer up to it is frozen or parameter-free, else None."""
        blob = self.net.spec["outputs"].get("features")
        frozen = set(self.net.frozen_layers())
        for layer in self.net.spec["layers"]:
            if self.net.has_state(layer["name"]) and layer["name"] not in frozen or layer["type"] == "dropout":
                return None
            if layer["top"] == blob:
                return blob
        return None

    @torch.no_grad()
    def cache_features(self, blob, paths, labels, progress=True):
        """Compute output `blob` of the frozen layers for every image, centre crop and mirrored.

        Returns (features (2, N, ...) float32 CPU tensor, {index: path} of undecodable images), whose features are
        those of another image of the same identity, as in training.
        """
        self.net.eval()
        dataset = FaceDataset(paths, labels, self.preprocess, train=False)
        size, bad, chunks = 64, {}, []
        loader = make_loader(dataset, self.settings["num_workers"], batch_size=size)
        for images, _, _, bad_paths in tqdm(loader, desc="features", disable=not progress, dynamic_ncols=True):
            bad.update({len(chunks) * size + i: path for i, path in enumerate(bad_paths) if path})
            chunks.append(batch_outputs(self.net, images.to(self.device), blob, with_mirror=True))
        self.net.train()
        return torch.cat(chunks, dim=1), bad

    def objective(self, inputs, labels, step):
        """Triplet loss over the triplets mined in this (global) batch; stats: active fraction, mean d_ap and d_an."""
        s = self.settings
        emb = self.model(inputs, ["embedding"])["embedding"]
        emb, labels = gather_batch(emb, labels)  # mine over every rank's part of the global batch
        gen = step_generator(s["seed"], step, emb.device)
        a, p, n = select_triplets(emb.detach(), labels, s["selection"], margin=s["margin"],
                                  backend=s["mining_backend"], generator=gen)
        loss_of = pinguo_loss if s["selection"] == "pinguo" else triplet_loss
        return loss_of(emb, a, p, n, s["margin"])


def make_sampler(settings, labels, rank=0, world_size=1):
    """Stage 2's batch sampler: pinguo's batches for selection "pinguo", else P x K (plus extra negatives)."""
    s = settings
    if s["selection"] == "pinguo":
        return PinguoBatches(labels, s["pinguo_triplets"], s["seed"], s["batches_per_epoch"], rank, world_size)
    return PKBatches(labels, s["identities_per_batch"], s["images_per_identity"], s["seed"], s["batches_per_epoch"],
                     rank, world_size, s["extra_negatives"])

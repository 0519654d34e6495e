"""Distributed training: 2 CPU processes with gloo under torchrun, on real faces with the tiny network.

One torchrun launch runs every 2-process job (tests/helpers/ddp_worker.py); the checks then verify that global-batch
mining over gathered embeddings equals one process mining the concatenated batch (triplets, loss, gradient),
that ranks agree on NaN losses and stop signals, that ranks hold identical weights after every step, that a
distributed run resumed mid-epoch retraces the uninterrupted one, and that a 2-process stage 2 (cached features
or images) ends with the weights of a 1-process run over the same global batches.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
from tests.helpers import ddp_worker
from tests.helpers.tiny import TINY_SOFTMAX_DROPOUT
from tripletloss.engine.checkpoint import load_checkpoint
from tripletloss.mining import STRATEGIES

WORKER = Path(ddp_worker.__file__)
IDENTITIES = [f"s{i}" for i in range(1, 9)]  # 8 ORL identities, 80 images


def torchrun(nproc, plan, tmp_path):
    """Run the jobs of `plan` (see tests/helpers/ddp_worker.py) in `nproc` gloo processes; torchrun picks a free port."""
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(WORKER), str(plan_file)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ddp_worker.ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"


def digests(out, kind="params"):
    """Each rank's per-step digests of `kind` ('params' or 'state': parameters and buffers)."""
    return [json.loads((Path(out) / f"digests-{r}.json").read_text())[kind] for r in range(2)]


def weights(model_path):
    """The layer weights saved in a model.pt."""
    return load_checkpoint(model_path)["model"]


def set_args(overrides):
    """`--set` arguments for train.py."""
    return [a for kv in overrides for a in ("--set", kv)]


@pytest.fixture
def settings(tiny_settings, orl_dir, tmp_path):
    """tiny_settings on 8 ORL identities, on the CPU, with a dropout layer in the softmax net, in fp32 (bf16
    convolutions round differently over half a batch, and the 2-rank run is compared with one process)."""
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(IDENTITIES) + "\n")
    nets = tmp_path / "nets"
    (nets / "softmax_dropout.yaml").write_text(TINY_SOFTMAX_DROPOUT)
    return tiny_settings + [f"data_dir={orl_dir}", f"train_identities={ids}", "device=cpu",
                            f"softmax_net={nets / 'softmax_dropout.yaml'}", "softmax_batch_size=8",
                            "identities_per_batch=2", "images_per_identity=4", "batches_per_epoch=4",
                            "precision=fp32"]


def plan(settings, tmp_path):
    """The 2-process jobs: mining, agreement, stage 1 with a checkpoint per step, its resume from step 7, a
    fine-tune whose trainable layers change after epoch 1, stage 2 with and without cached features."""
    softmax = settings + ["checkpoint_every_steps=1", "keep_checkpoints=20"]
    model = f"{tmp_path / 'runs'}/softmax-*/model.pt"
    jobs = [{"mode": "mine", "out": str(tmp_path / "mine")}, {"mode": "agree", "out": str(tmp_path / "agree")},
            {"mode": "train", "out": str(tmp_path / "softmax"),
             "args": ["--stage", "softmax", "--epochs", "2", *set_args(softmax)]},
            {"mode": "train", "out": str(tmp_path / "resumed"),  # step 7: epoch 2, batch 2
             "args": ["--stage", "softmax", "--resume", f"{tmp_path / 'runs'}/softmax-*/step-7.pt"]},
            {"mode": "train", "out": str(tmp_path / "finetune"),  # epoch 1 trains fc9 only, epoch 2 from res2 on
             "args": ["--stage", "softmax", "--epochs", "2", "--finetune", model,
                      *set_args(settings + ["finetune_freeze_epochs=1", "finetune_unfreeze_from=res2",
                                            f"work_dir={tmp_path / 'finetune'}"])]}]
    for cache in (True, False):
        jobs.append({"mode": "train", "out": str(tmp_path / f"triplet-{cache}"),
                     "args": ["--stage", "triplet", "--epochs", "2", "--finetune", model,
                              *set_args(settings + [f"cache_features={cache}",
                                                    f"work_dir={tmp_path / f'triplet-{cache}'}"])]})
    return jobs


def check_mining(out):
    """Both ranks' triplets, loss and (DDP-averaged) gradient equal one process's on the concatenated batch."""
    inputs, labels, linear = ddp_worker.mining_problem()
    for strategy in STRATEGIES:
        single = ddp_worker.mine_step(linear, inputs, labels, strategy)
        assert single["triplets"].shape[1] > 0
        for rank in range(2):
            got = torch.load(out / f"mine-{rank}.pt", weights_only=True)[strategy]
            assert torch.equal(got["triplets"], single["triplets"]), (strategy, rank)
            assert got["loss"] == pytest.approx(single["loss"], rel=1e-6), (strategy, rank)
            torch.testing.assert_close(got["grad"], single["grad"], rtol=1e-5, atol=1e-7)


def check_agreement(out):
    """A NaN loss on one rank makes every rank skip the step; a signal on one rank stops every rank."""
    for rank in range(2):
        assert json.loads((out / f"agree-{rank}.json").read_text()) == {"finite": False, "signal": 15}


def check_softmax(tmp_path):
    """Ranks agree after every step (also across a fine-tune's unfreezing); the resumed run retraces the
    uninterrupted one, buffers included."""
    rank0, rank1 = digests(tmp_path / "softmax")
    assert len(rank0) == 10 and rank0 == rank1  # 80 images / (8 x 2 ranks) = 5 steps per epoch
    assert len(set(rank0)) == 10  # every step changed the weights
    for original, resumed in zip(digests(tmp_path / "softmax", "state"), digests(tmp_path / "resumed", "state")):
        assert resumed == original[7:]
    rank0, rank1 = digests(tmp_path / "finetune")
    assert len(rank0) == 10 and rank0 == rank1 and len(set(rank0)) == 10


def check_triplet(settings, tmp_path, cache):
    """Ranks agree after every step, and end with the weights of one process over the same global batches."""
    out = tmp_path / f"triplet-{cache}"
    rank0, rank1 = digests(out)
    assert len(rank0) == 8 and rank0 == rank1 and len(set(rank0)) == 8
    one_dir = tmp_path / f"one-{cache}"
    train.main(["--stage", "triplet", "--epochs", "2", "--finetune",
                str(next((tmp_path / "runs").glob("softmax-*")) / "model.pt"),
                *set_args(settings + [f"cache_features={cache}", f"work_dir={one_dir}",
                                      "identities_per_batch=4"])])  # 2 ranks x 2 identities
    one = weights(next(one_dir.glob("triplet-*")) / "model.pt")
    two = weights(next(out.glob("triplet-*")) / "model.pt")
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-6)


def test_two_gloo_processes_under_torchrun(settings, tmp_path):
    torchrun(2, plan(settings, tmp_path), tmp_path)
    check_mining(tmp_path / "mine")
    check_agreement(tmp_path / "agree")
    check_softmax(tmp_path)
    for cache in (True, False):
        check_triplet(settings, tmp_path, cache)

"""Distributed training: 2 CPU processes with gloo under torchrun, on real faces with the tiny network.

Checks that ranks hold identical weights after every step, that global-batch mining over gathered embeddings
equals one process mining the concatenated batch, that a 2-process stage 2 ends with the weights of a 1-process
run over the same global batches, and that a distributed run resumed mid-epoch continues exactly.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ddp_worker  # puts the repository root on sys.path for `train`
import train
from tripletloss.engine.checkpoint import load_checkpoint
from tripletloss.mining import STRATEGIES

WORKER = Path(ddp_worker.__file__)
IDENTITIES = [f"s{i}" for i in range(1, 9)]  # 8 ORL identities, 80 images
TINY_SOFTMAX_DROPOUT = """
include: [tiny_backbone.yaml]
layers:
  - {name: drop8, type: dropout, ratio: 0.3}
  - {name: fc9, type: fc, num_output: $num_classes}
outputs: {logits: fc9, embedding: bn8}
"""


def torchrun(nproc, *args):
    """Run tests/ddp_worker.py with `args` in `nproc` gloo processes (torchrun --standalone picks a free port)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(WORKER), *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ddp_worker.ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"


def digests(out, nproc):
    """The per-step parameter digests of each rank: a list of lists."""
    return [json.loads((Path(out) / f"digests-{r}.json").read_text()) for r in range(nproc)]


def weights(model_path):
    """The layer weights saved in a model.pt."""
    return load_checkpoint(model_path)["model"]


@pytest.fixture
def settings(tiny_settings, orl_dir, tmp_path):
    """tiny_settings on 8 ORL identities, on the CPU, with data_dir set."""
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(IDENTITIES) + "\n")
    return tiny_settings + [f"data_dir={orl_dir}", f"train_identities={ids}", "device=cpu"]


def set_args(overrides):
    """`--set` arguments for train.py."""
    return [a for kv in overrides for a in ("--set", kv)]


def test_gathered_mining_selects_like_one_process(tmp_path):
    torchrun(2, "mine", tmp_path)
    inputs, labels, linear = ddp_worker.mining_problem()
    for strategy in STRATEGIES:
        single = ddp_worker.mine_step(linear, inputs, labels, strategy)
        assert single["triplets"].shape[1] > 0
        for rank in range(2):
            got = torch.load(tmp_path / f"mine-{rank}.pt", weights_only=True)[strategy]
            assert torch.equal(got["triplets"], single["triplets"]), (strategy, rank)
            assert got["loss"] == pytest.approx(single["loss"], rel=1e-6)
            torch.testing.assert_close(got["grad"], single["grad"], rtol=1e-5, atol=1e-7)


def test_softmax_ranks_agree_and_resume_continues_exactly(settings, tmp_path):
    nets = Path(next(s for s in settings if s.startswith("softmax_net="))[len("softmax_net="):]).parent
    (nets / "softmax_dropout.yaml").write_text(TINY_SOFTMAX_DROPOUT)
    overrides = settings + [f"softmax_net={nets / 'softmax_dropout.yaml'}", "softmax_batch_size=8",
                            "checkpoint_every_steps=1", "keep_checkpoints=20"]
    first = tmp_path / "first"
    first.mkdir()
    torchrun(2, "train", first, "--stage", "softmax", "--epochs", 2, *set_args(overrides))
    rank0, rank1 = digests(first, 2)
    assert len(rank0) == 10 and rank0 == rank1  # 80 images / (8 x 2 ranks) = 5 steps per epoch
    assert len(set(rank0)) == 10  # every step changed the weights
    run_dir = next((tmp_path / "runs").glob("softmax-*"))
    shutil.copy(run_dir / "model.pt", tmp_path / "uninterrupted.pt")

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    torchrun(2, "train", resumed, "--stage", "softmax", "--resume", run_dir / "step-7.pt")  # epoch 2, batch 2
    again0, again1 = digests(resumed, 2)
    assert again0 == again1 == rank0[7:]
    for key, value in weights(tmp_path / "uninterrupted.pt").items():
        assert torch.equal(weights(run_dir / "model.pt")[key], value), key


@pytest.mark.parametrize("cache", [True, False])
def test_triplet_two_processes_equal_one_process_over_the_same_global_batches(settings, tmp_path, cache):
    overrides = settings + ["softmax_batch_size=16", "identities_per_batch=2", "images_per_identity=4",
                            "batches_per_epoch=4", f"cache_features={cache}"]
    train.main(["--stage", "softmax", "--epochs", "1", *set_args(overrides)])
    out = tmp_path / "two"
    out.mkdir()
    torchrun(2, "train", out, "--stage", "triplet", "--epochs", 2, *set_args(overrides))
    rank0, rank1 = digests(out, 2)
    assert len(rank0) == 8 and rank0 == rank1 and len(set(rank0)) == 8
    two = weights(next((tmp_path / "runs").glob("triplet-*")) / "model.pt")

    overrides += ["identities_per_batch=4", f"work_dir={tmp_path / 'one'}"]  # one process, the same global batch
    shutil.copytree(tmp_path / "runs", tmp_path / "one", ignore=shutil.ignore_patterns("triplet-*"))
    train.main(["--stage", "triplet", "--epochs", "2", *set_args(overrides)])
    one = weights(next((tmp_path / "one").glob("triplet-*")) / "model.pt")
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-6)

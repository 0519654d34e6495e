"""Worker process for tests/engine/test_distributed.py, started under torchrun: runs the jobs of a JSON plan in order.

    python tests/helpers/ddp_worker.py PLAN.json

PLAN.json is a list of {"mode": "mine" | "agree" | "train", "out": folder, "args": [...]}; one launch runs them all (the
process group stays up), which keeps the test fast. Modes:
  train  run train.py's main with `args` (arguments holding '*' are expanded with glob), recording after every
         optimizer step SHA-256 digests of this rank's parameters and of its whole state (parameters and
         buffers); writes OUT/digests-<rank>.json = {"params": [...], "state": [...]}
  mine   each rank embeds its slice of a fixed global batch with a DDP-wrapped linear layer, gathers the global
         batch, mines it with every strategy and backpropagates the triplet loss; writes OUT/mine-<rank>.pt
  agree  rank 0 has a NaN loss, rank 1 a stop signal; writes what each rank concludes to OUT/agree-<rank>.json
"""
import glob
import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tripletloss.engine import distributed  # noqa: E402
from tripletloss.losses import triplet_loss  # noqa: E402
from tripletloss.mining import STRATEGIES, select_triplets  # noqa: E402

GLOBAL_BATCH, DIM, IDENTITIES = 24, 8, 6


def mining_problem():
    """The fixed global batch: (inputs (24, 8), labels (24,), a seeded Linear(8, 8)), identical in every process."""
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(GLOBAL_BATCH, DIM, generator=gen)
    labels = torch.arange(IDENTITIES).repeat_interleave(GLOBAL_BATCH // IDENTITIES)
    torch.manual_seed(0)
    return inputs, labels, torch.nn.Linear(DIM, DIM)


def mine_step(model, inputs, labels, strategy):
    """Embed, gather (a no-op in one process), mine with a fixed seed, backprop the triplet loss.

    Returns {"triplets": (3, T) int64, "loss": float, "grad": the linear layer's weight gradient}.
    """
    model.zero_grad()
    emb = F.normalize(model(inputs), dim=1)
    emb, labels = distributed.gather_batch(emb, labels)
    a, p, n = select_triplets(emb, labels, strategy, margin=0.5, backend="torch",
                              generator=torch.Generator().manual_seed(1))
    loss, _ = triplet_loss(emb, a, p, n, 0.5)
    loss.backward()
    weight = model.module.weight if hasattr(model, "module") else model.weight
    return {"triplets": torch.stack([a, p, n]), "loss": loss.item(), "grad": weight.grad.clone()}


def run_mine(out):
    """Every strategy on this rank's slice of the global batch; saves the results to OUT/mine-<rank>.pt."""
    device = distributed.setup("cpu")
    inputs, labels, linear = mining_problem()
    part = GLOBAL_BATCH // distributed.world_size()
    rows = slice(distributed.rank() * part, (distributed.rank() + 1) * part)
    model = distributed.wrap(linear, device)
    results = {s: mine_step(model, inputs[rows], labels[rows], s) for s in STRATEGIES}
    torch.save(results, Path(out) / f"mine-{distributed.rank()}.pt")


def run_agree(out):
    """Ask the ranks to agree on a loss that is NaN on rank 0 only and a signal seen by rank 1 only."""
    me = distributed.rank()
    finite = distributed.all_finite(torch.tensor(float("nan") if me == 0 else 1.0))
    signum = distributed.agreed_signal(15 if me == 1 else None)
    (Path(out) / f"agree-{me}.json").write_text(json.dumps({"finite": finite, "signal": signum}))


def _digest(tensors):
    return hashlib.sha256(b"".join(t.detach().cpu().numpy().tobytes() for t in tensors)).hexdigest()


def run_train(out, train_args):
    """train.py's main with per-step digests; writes OUT/digests-<rank>.json."""
    import train
    from tripletloss.engine.loop import TrainLoop

    recorded, step = {"params": [], "state": []}, TrainLoop._step

    def recording_step(loop, batch):
        stats = step(loop, batch)
        recorded["params"].append(_digest(loop.stage.net.parameters()))
        recorded["state"].append(_digest(loop.stage.net.state_dict().values()))
        return stats

    TrainLoop._step = recording_step
    try:
        train.main([(glob.glob(a) or [a])[0] if "*" in a else a for a in train_args])
    finally:
        TrainLoop._step = step
    (Path(out) / f"digests-{distributed.rank()}.json").write_text(json.dumps(recorded))


if __name__ == "__main__":
    for job in json.loads(Path(sys.argv[1]).read_text()):
        Path(job["out"]).mkdir(parents=True, exist_ok=True)
        if job["mode"] == "mine":
            run_mine(job["out"])
        elif job["mode"] == "agree":
            run_agree(job["out"])
        else:
            run_train(job["out"], job["args"])

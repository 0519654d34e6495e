"""Training on several processes with PyTorch's own engine: torchrun + torch.distributed + DistributedDataParallel.

`torchrun --nproc_per_node N train.py ...` sets RANK, WORLD_SIZE and LOCAL_RANK; `setup` then joins the process
group (NCCL on GPUs, gloo on CPU) and each process trains on cuda:LOCAL_RANK (or the CPU). Without those variables
every function here is a no-op, so the single-process path is unchanged.

What each process does differently, and what keeps them in step:
  - samplers build the same global batches from (seed, epoch) and each rank keeps its slice;
  - DDP averages gradients, so every rank applies the same update (BatchNorm statistics follow rank 0);
  - stage 2 gathers every rank's embeddings (`gather_batch`) and mines over the whole global batch;
  - only rank 0 writes run directories, checkpoints and logs, and prints notes (tripletloss.console); checkpoints
    keep every rank's RNG state;
  - decisions that change the control flow (a stop signal, a NaN loss, an improved metric) are agreed by all ranks.
"""
import atexit
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from tripletloss.console import say
from tripletloss.errors import ConfigError
from tripletloss.engine.device import pick_device

TIMEOUT = timedelta(minutes=30)  # longest wait in a collective (rank 0 evaluating or writing a checkpoint)
_CPU_GROUP = []  # a gloo group beside an NCCL default group, for CPU-side agreements; empty under gloo


def launched():
    """True when this process was started by torchrun (RANK and WORLD_SIZE are in the environment)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank():
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size():
    """The number of processes training together (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def is_active():
    """True when a process group of more than one process is up."""
    return world_size() > 1


def _device_for(setting, local_rank):
    """The torch.device of this rank for the `device` setting: cuda:LOCAL_RANK for auto/cuda on GPUs, else CPU."""
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if setting not in ("auto", "cuda"):
        raise ConfigError(f"device={setting}: under torchrun each process takes cuda:LOCAL_RANK; "
                          f"set device=cuda (or auto, or cpu)")
    return torch.device("cuda", local_rank)


def setup(device_setting):
    """Join torchrun's process group if launched by torchrun; return this process's torch.device.

    device_setting: the `device` setting ("auto", "cpu", "cuda", ...). Under torchrun the backend is NCCL for
    CUDA devices and gloo for the CPU, and the group is destroyed at exit. Without torchrun, returns
    `pick_device(device_setting)` and starts nothing.
    """
    if not launched():
        return pick_device(device_setting)
    device = _device_for(device_setting, int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
        if device.type == "cuda":  # object collectives and small agreements run on the CPU
            _CPU_GROUP.append(dist.new_group(backend="gloo", timeout=TIMEOUT))
        atexit.register(_shutdown)
    return device


def _cpu_group():
    """The process group for small CPU tensors and Python objects (None: the default group, already gloo)."""
    return _CPU_GROUP[0] if _CPU_GROUP else None


def _shutdown():
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(net, device):
    """Return `net` wrapped in DistributedDataParallel when several processes train, else `net` itself.

    Call again whenever the set of trainable parameters changes (DDP registers them when it is built); building
    the wrapper copies rank 0's parameters and buffers to every rank. Frozen parameters (requires_grad False)
    are left alone.
    """
    if not is_active():
        return net
    return DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)


def gather_batch(embeddings, labels):
    """Return (embeddings, labels) of every rank concatenated in rank order: the global batch.

    embeddings: (B, D), usually with autograd; labels: (B,); B must be the same on every rank. Every rank gets
    the same values, so mining them with the same generator selects the same triplets as one process would on
    the concatenated batch. The gradient flows back through this rank's own rows only (the others are copies),
    scaled by world_size: every rank computes the same global loss, so DDP's average of the ranks' gradients is
    then exactly the single-process gradient. Without a process group the inputs are returned unchanged.
    """
    if not is_active():
        return embeddings, labels
    parts = [torch.empty_like(embeddings) for _ in range(world_size())]
    dist.all_gather(parts, embeddings.detach().contiguous())
    label_parts = [torch.empty_like(labels) for _ in range(world_size())]
    dist.all_gather(label_parts, labels.contiguous())
    own, scale = embeddings.view_as(embeddings), world_size()
    if own.requires_grad:
        own.register_hook(lambda grad: grad * scale)
    parts[rank()] = own
    return torch.cat(parts), torch.cat(label_parts)


def broadcast_object(obj):
    """Return rank 0's `obj` on every rank (any picklable value); `obj` itself without a process group."""
    if not is_active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, group=_cpu_group())
    return box[0]


def gather_to_main(obj):
    """Collect every rank's `obj` on rank 0: a list in rank order there, None elsewhere; [obj] alone."""
    if not is_active():
        return [obj]
    out = [None] * world_size() if rank() == 0 else None
    dist.gather_object(obj, out, dst=0, group=_cpu_group())
    return out


def agreed_signal(signum):
    """The stop signal any rank has received (the largest number), or None; all ranks get the same answer.

    Called by every rank after every step, so all stop, checkpoint and exit at the same step.
    """
    if not is_active():
        return signum
    flag = torch.tensor([signum or 0], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=_cpu_group())
    return int(flag.item()) or None


def all_finite(loss):
    """True when `loss` (a scalar tensor) is finite on every rank; all ranks get the same answer."""
    finite = bool(torch.isfinite(loss))
    if not is_active():
        return finite
    flag = torch.tensor([int(finite)], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=_cpu_group())
    return bool(flag.item())


def own_rng_state(ckpt):
    """This rank's RNG state from checkpoint dict `ckpt` (its `rng_ranks` entry when the world size matches).

    A checkpoint from a run with another number of processes gives every rank rank 0's state, with a note.
    """
    states = ckpt.get("rng_ranks") or [ckpt["rng"]]
    if len(states) == world_size():
        return states[rank()]
    say(f"note: checkpoint written by {len(states)} process(es), resuming with {world_size()}: batches and random "
        "draws from here on differ from the original run")
    return ckpt["rng"]


def main_first(fn, *args):
    """Run `fn(*args)` on rank 0 first, then on the other ranks (e.g. to create a shared cache once); return it."""
    if rank() == 0:
        result = fn(*args)
    if is_active():
        dist.barrier(group=_cpu_group())
    if rank() != 0:
        result = fn(*args)
    return result


def barrier():
    """Wait until every rank gets here (no-op without a process group)."""
    if is_active():
        dist.barrier(group=_cpu_group())

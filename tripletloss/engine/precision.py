"""Mixed-precision training: bf16 autocast of the forward pass over image batches, where it pays.

The `precision` setting: "fp32" (no autocast), "bf16" (autocast always), or "auto": bf16 where the device computes
it natively (CUDA GPUs with bf16 support; CPUs with AVX512-BF16 or AMX, on which oneDNN's bf16 convolutions run
about twice as fast as fp32) and fp32 elsewhere. Weights, gradients and optimizer state stay float32; the net's
outputs are returned as float32, so losses and triplet mining run in full precision. Steps over cached stage-2
features (no convolutions) stay fp32 in every mode.
"""
from pathlib import Path

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16")
_NATIVE_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def _cpu_flags():
    """The CPU feature flags of /proc/cpuinfo (an empty set where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def native_bf16(device):
    """True when `device` (a torch.device) computes bf16 natively (not emulated in fp32 units)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(_cpu_flags() & _NATIVE_CPU_FLAGS) and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def resolve(precision, device):
    """The precision ("fp32" or "bf16") that setting value `precision` means on torch.device `device`."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


class Autocast(nn.Module):
    """Runs `model` under bf16 autocast on image batches and returns its outputs as float32.

    `model` is a `Net` or its DDP wrapper, called as model(inputs, outputs); a dict of cached features as
    `inputs` (stage 2's frozen backbone) runs in float32 unchanged.
    """

    def __init__(self, model, device_type):
        super().__init__()
        self.model, self.device_type = model, device_type

    def forward(self, inputs, *args, **kwargs):
        """Return the wrapped model's {name: float32 tensor} outputs for `inputs`."""
        if not torch.is_tensor(inputs):
            return self.model(inputs, *args, **kwargs)
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            outputs = self.model(inputs, *args, **kwargs)
        return {name: value.float() for name, value in outputs.items()}


def wrap(model, precision, device):
    """Return `model` wrapped in Autocast when `precision` resolves to bf16 on `device`, else `model` itself."""
    return Autocast(model, device.type) if resolve(precision, device) == "bf16" else model

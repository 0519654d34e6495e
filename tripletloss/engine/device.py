"""Choosing the torch device of a `device` setting or --device option (auto, cpu, cuda, cuda:N)."""
import torch

from tripletloss.errors import ConfigError


def pick_device(name="auto"):
    """Return the torch.device for a setting: "auto" means CUDA when available, else CPU.

    Raises ConfigError naming the device when it is not a torch device or this machine does not have it.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"device '{name}' is not a torch device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        have = torch.cuda.device_count()
        raise ConfigError(f"device '{name}': this machine has {have} CUDA device(s) (use device=cpu or auto)")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device '{name}': only cpu and cuda devices are supported")
    return device

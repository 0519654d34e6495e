"""A stage's net from its YAML setting: the input size checked against image_size, and the outputs the stage
reads (its `required_outputs`) checked when the net is built, both before any data is read or run is created."""
import torch

from tripletloss.errors import ConfigError, NetSpecError
from tripletloss.net import build_net
from tripletloss.net.spec import input_of
from tripletloss.resources import resolve_path
from tripletloss.settings_schema import stage_key


def check_input_size(settings, key):
    """Check that the YAML of setting `key` takes image_size input: NetSpecError when its input size is not a
    whole number, ConfigError when it differs from image_size. Returns nothing."""
    size = input_of(resolve_path(settings[key])).get("size")
    if type(size) is not int:
        raise NetSpecError(f"{settings[key]}: input size must be a whole number, got {size!r}")
    if size != settings["image_size"]:
        raise ConfigError(f"image_size {settings['image_size']} differs from the input size {size} of "
                          f"{settings[key]} (set image_size={size} or change the YAML)")


def build_stage_net(stage_class, settings, yaml_variables):
    """Build the net of `stage_class`'s YAML setting (settings_schema's `net` role) with `yaml_variables`
    (the values of its $variables); return it.

    ConfigError naming the setting, the YAML and the output when the net lacks an output the stage reads
    (stage_class.required_outputs).
    """
    key = stage_key(stage_class.name, "net")
    net = build_net(resolve_path(settings[key]), yaml_variables)
    outputs = net.spec["outputs"]
    for name, reader in stage_class.required_outputs(settings, outputs).items():
        if name not in outputs:
            raise ConfigError(f"{key} {settings[key]}: no '{name}' output, needed by {reader}; it has "
                              f"{', '.join(sorted(outputs)) or 'none'}")
    return net


def on_device(net, settings, device):
    """Return `net` moved to `device`, in channels_last memory layout when the `channels_last` setting asks."""
    layout = torch.channels_last if settings["channels_last"] else torch.contiguous_format
    return net.to(device, memory_format=layout)

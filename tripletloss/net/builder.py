"""Building an `nn.Module` from a resolved layer-list spec, with Caffe-style lr_mult / decay_mult semantics."""
import torch
from torch import nn

from tripletloss.errors import NetSpecError
from tripletloss.net.layers import LAYER_TYPES
from tripletloss.net.spec import load_spec


class Net(nn.Module):
    """A layer graph built from a spec. `net(images)` returns a dict {output name: tensor} of the spec's outputs.

    Layers whose lr_mult is 0 (weights and biases) are frozen: their parameters need no gradient and, if they are
    BatchNorm-like, they stay in eval mode even when the net trains. `blob_shapes` maps each blob to its shape
    without the batch dimension, found while building.
    """

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleDict()
        self._build()
        self.set_lr_mults({layer["name"]: layer["lr_mult"] for layer in spec["layers"]})

    def _build(self):
        size, channels = self.spec["input"]["size"], self.spec["input"].get("channels", 3)
        blobs = {"data": torch.zeros(2, channels, size, size)}
        for layer in self.spec["layers"]:
            where = f"{layer['file']}: layer '{layer['name']}'"
            inputs = [blobs[b] for b in _as_list(layer["bottom"])]
            kind = LAYER_TYPES[layer["type"]]
            params = {k: layer[k] for k in kind.required}  # optional fields may postdate the spec (checkpoints)
            params.update({k: layer.get(k, default) for k, default in kind.optional.items()})
            try:
                module = kind.build(params, [tuple(x.shape[1:]) for x in inputs])
                module.eval()
                with torch.no_grad():
                    out = module(*inputs)
            except (RuntimeError, ValueError, TypeError, ZeroDivisionError) as exc:
                msg = str(exc).splitlines()[0]
                raise NetSpecError(f"{where}: cannot build on input shape(s) "
                                   f"{[tuple(x.shape[1:]) for x in inputs]}: {msg}") from None
            self.layers[layer["name"]] = module
            blobs[layer["top"]] = out
        self.blob_shapes = {name: tuple(blob.shape[1:]) for name, blob in blobs.items()}

    @property
    def input_size(self):
        """The spatial input size (int) this net expects."""
        return self.spec["input"]["size"]

    def set_lr_mults(self, lr_mults):
        """Set per-layer [weight, bias] lr multipliers (dict name -> pair); lr_mult 0 freezes the layer."""
        self.lr_mults = {name: list(lr_mults.get(name, [1.0, 1.0])) for name in self.layers}
        for name, module in self.layers.items():
            for pname, p in module.named_parameters():
                p.requires_grad_(self._mult(name, pname, self.lr_mults) > 0)
        self.train(self.training)

    def has_state(self, name):
        """True if layer `name` has parameters or buffers (what freezing it keeps fixed)."""
        module = self.layers[name]
        return any(True for _ in module.parameters()) or any(True for _ in module.buffers())

    def frozen_layers(self):
        """Return the names of layers with parameters or buffers whose every lr_mult is 0."""
        return [name for name in self.layers if self.has_state(name) and not any(self.lr_mults[name])]

    def train(self, mode=True):
        """Set training mode, keeping frozen layers (e.g. BatchNorm running statistics) in eval mode."""
        super().train(mode)
        for name in self.frozen_layers() if mode else []:
            self.layers[name].eval()
        return self

    def forward(self, inputs, outputs=None):
        """Run the graph; return {name: tensor} for `outputs` (default: the spec's outputs).

        `inputs` is the image batch (N, C, H, W) or a dict {blob name: tensor} of blobs already computed (e.g.
        cached backbone features): layers whose bottoms are unavailable are skipped. Stops as soon as every
        requested blob is computed, so asking for backbone features skips the head.
        """
        wanted = outputs or list(self.spec["outputs"]) or [self.spec["layers"][-1]["top"]]
        blob_of = {k: self.spec["outputs"].get(k, k) for k in wanted}
        blobs = dict(inputs) if isinstance(inputs, dict) else {"data": inputs}
        pending = set(blob_of.values()) - set(blobs)
        for layer in self.spec["layers"]:
            if not pending:
                break
            bottoms = _as_list(layer["bottom"])
            if layer["top"] in blobs or not all(b in blobs for b in bottoms):
                continue
            blobs[layer["top"]] = self.layers[layer["name"]](*[blobs[b] for b in bottoms])
            pending.discard(layer["top"])
        return {k: blobs[b] for k, b in blob_of.items()}

    def param_groups(self, weight_decay):
        """Return optimizer param groups: one per (lr_mult, decay_mult) pair, frozen parameters left out.

        Each group carries its lr_mult (the training loop sets its rate to the learning rate times lr_mult) and
        weight_decay = `weight_decay` * decay_mult.
        """
        decay = {layer["name"]: layer["decay_mult"] for layer in self.spec["layers"]}
        groups = {}
        for name, module in self.layers.items():
            for pname, p in module.named_parameters():
                lr_mult = self._mult(name, pname, self.lr_mults)
                if lr_mult == 0:
                    continue
                key = (lr_mult, self._mult(name, pname, decay))
                groups.setdefault(key, []).append(p)
        return [{"params": ps, "weight_decay": weight_decay * dm, "lr_mult": lr} for (lr, dm), ps in groups.items()]

    @staticmethod
    def _mult(layer_name, param_name, mults):
        weight, bias = mults.get(layer_name, [1.0, 1.0])
        return bias if param_name.endswith("bias") else weight


def _as_list(x):
    return x if isinstance(x, list) else [x]


def build_net(yaml_path, variables=None):
    """Read the YAML layer list at `yaml_path` with build `variables`; return the built `Net`."""
    return Net(load_spec(yaml_path, variables))

"""Layer types of the YAML layer lists: a registry from type name to a small builder.

Each builder takes the layer's parameters (a dict, already checked against the type's declared fields) and the
shapes of its bottom blobs, and returns an `nn.Module` whose forward takes the bottom tensors in order.
New layer types are added here with `@register(...)`, and nowhere else.
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LayerType:
    """A registered layer type: its builder, the parameters it requires / accepts (with defaults), and whether it
    takes several bottoms (multi_input; spec.check_spec refuses more than one bottom otherwise)."""
    build: callable
    required: tuple = ()
    optional: dict = field(default_factory=dict)
    multi_input: bool = False


LAYER_TYPES = {}


def register(*names, required=(), optional=None, multi_input=False):
    """Decorator registering a builder under one or more type names; returns the builder unchanged."""
    def wrap(fn):
        for name in names:
            LAYER_TYPES[name] = LayerType(fn, tuple(required), dict(optional or {}), multi_input)
        return fn
    return wrap


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


@register("conv", required=("num_output", "kernel_size"),
          optional={"stride": 1, "pad": 0, "dilation": 1, "group": 1, "bias": True})
def _conv(p, shapes):
    return nn.Conv2d(shapes[0][0], p["num_output"], _pair(p["kernel_size"]), _pair(p["stride"]), _pair(p["pad"]),
                     _pair(p["dilation"]), p["group"], bias=p["bias"])


@register("batchnorm", optional={"eps": 1e-5, "momentum": 0.1, "affine": True})
def _batchnorm(p, shapes):
    cls = nn.BatchNorm2d if len(shapes[0]) == 3 else nn.BatchNorm1d
    return cls(shapes[0][0], eps=p["eps"], momentum=p["momentum"], affine=p["affine"])


class Affine(nn.Module):
    """Per-channel `x * weight + bias` (Caffe's Scale layer, dlib's affine layer); weights start at identity."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape) + self.bias.view(shape)


@register("affine", "scale")
def _affine(p, shapes):
    return Affine(shapes[0][0])


@register("relu")
def _relu(p, shapes):
    return nn.ReLU(inplace=False)


@register("prelu", optional={"shared": False})
def _prelu(p, shapes):
    return nn.PReLU(1 if p["shared"] else shapes[0][0])


@register("pool", optional={"pool": "max", "kernel_size": None, "stride": None, "pad": 0, "global": False,
                            "ceil_mode": False})
def _pool(p, shapes):
    if p["pool"] not in ("max", "ave"):
        raise ValueError(f"pool must be 'max' or 'ave', got {p['pool']!r}")
    if p["global"]:
        return nn.AdaptiveMaxPool2d(1) if p["pool"] == "max" else nn.AdaptiveAvgPool2d(1)
    if p["kernel_size"] is None:
        raise ValueError("pool needs kernel_size unless global: true")
    stride = p["stride"] if p["stride"] is not None else p["kernel_size"]
    if p["pool"] == "max":
        return nn.MaxPool2d(p["kernel_size"], stride, p["pad"], ceil_mode=p["ceil_mode"])
    return nn.AvgPool2d(p["kernel_size"], stride, p["pad"], ceil_mode=p["ceil_mode"], count_include_pad=False)


class Linear(nn.Linear):
    """`nn.Linear` that flattens its input first, like Caffe's InnerProduct."""

    def forward(self, x):
        return super().forward(x.flatten(1))


@register("fc", "inner_product", required=("num_output",), optional={"bias": True, "weight_filler": "default"})
def _fc(p, shapes):
    layer = Linear(math.prod(shapes[0]), p["num_output"], bias=p["bias"])
    if p["weight_filler"] not in FC_FILLERS:
        raise ValueError(f"weight_filler must be one of {', '.join(FC_FILLERS)} ('default': PyTorch's), "
                         f"got {p['weight_filler']!r}")
    with torch.no_grad():
        FC_FILLERS[p["weight_filler"]](layer.weight)
        if layer.bias is not None and p["weight_filler"] != "default":
            layer.bias.zero_()
    return layer


def _caffe_xavier(weight):
    """Caffe's xavier filler (FAN_IN): uniform in +-sqrt(3 / fan_in)."""
    bound = (3.0 / weight.shape[1]) ** 0.5
    nn.init.uniform_(weight, -bound, bound)


#: fc weight fillers: identity makes output i = input i (extra outputs 0), a pass-through start; both zero the bias.
FC_FILLERS = {"default": lambda weight: None, "identity": nn.init.eye_, "xavier": _caffe_xavier}


class CosineLinear(nn.Module):
    """`scale` x the cosine between each (flattened) input row and each class weight: NormFace's classifier, and
    CosFace's with `margin` > 0 (the softmax stage subtracts scale x margin from each row's true-class logit while
    training: `logit_margin`). Computed in float32 even under autocast (bf16 would round cosines to ~0.004)."""

    def __init__(self, in_features, out_features, scale, margin):
        super().__init__()
        self.scale, self.margin = float(scale), float(margin)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            cosines = F.linear(F.normalize(x.flatten(1).float()), F.normalize(self.weight.float()))
        return self.scale * cosines

    @property
    def logit_margin(self):
        """What training subtracts from the true class's logit: scale x margin."""
        return self.scale * self.margin


@register("cosine", required=("num_output",), optional={"scale": 30.0, "margin": 0.0})
def _cosine(p, shapes):
    if p["scale"] <= 0 or not 0 <= p["margin"] < 1:
        raise ValueError(f"scale must be > 0 and margin in [0, 1), got scale {p['scale']}, margin {p['margin']}")
    return CosineLinear(math.prod(shapes[0]), p["num_output"], p["scale"], p["margin"])


@register("dropout", optional={"ratio": 0.5})
def _dropout(p, shapes):
    return nn.Dropout(p["ratio"])


@register("flatten")
def _flatten(p, shapes):
    return nn.Flatten()  # every dimension after the batch one


class L2Norm(nn.Module):
    """L2-normalises each row (dimension 1)."""

    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return F.normalize(x, dim=1, eps=self.eps)


@register("l2norm", optional={"eps": 1e-10})
def _l2norm(p, shapes):
    return L2Norm(p["eps"])


class Eltwise(nn.Module):
    """Sum of its inputs; with zero_pad, smaller inputs are zero-padded to the largest shape first.

    Padding goes after the existing channels, rows and columns (bottom/right), as dlib's add_prev does.
    """

    def __init__(self, zero_pad):
        super().__init__()
        self.zero_pad = zero_pad

    def forward(self, *xs):
        if self.zero_pad:
            target = [max(x.shape[d] for x in xs) for d in range(1, xs[0].dim())]
            xs = [F.pad(x, _pad_amounts(x.shape[1:], target)) for x in xs]
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


def _pad_amounts(shape, target):
    """F.pad argument growing each dimension of `shape` to `target` at its end (last dimension first)."""
    amounts = []
    for have, want in reversed(list(zip(shape, target))):
        amounts += [0, want - have]
    return amounts


@register("eltwise", optional={"operation": "sum", "zero_pad": False}, multi_input=True)
def _eltwise(p, shapes):
    if p["operation"] != "sum":
        raise ValueError(f"eltwise operation must be 'sum', got {p['operation']!r}")
    if len(shapes) < 2:
        raise ValueError("eltwise needs at least two bottoms")
    return Eltwise(p["zero_pad"])


class Concat(nn.Module):
    """Concatenates its inputs along one axis."""

    def __init__(self, axis):
        super().__init__()
        self.axis = axis

    def forward(self, *xs):
        return torch.cat(xs, dim=self.axis)


@register("concat", optional={"axis": 1}, multi_input=True)
def _concat(p, shapes):
    return Concat(p["axis"])


class Residual(nn.Module):
    """Basic residual block: conv3-bn-relu-conv3-bn plus a shortcut (1x1 conv + bn if the shape changes), relu."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


@register("residual", required=("num_output",), optional={"stride": 1})
def _residual(p, shapes):
    return Residual(shapes[0][0], p["num_output"], p["stride"])

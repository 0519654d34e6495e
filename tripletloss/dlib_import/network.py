"""dlib's face-recognition ResNet (anet_type of dnn_face_recognition_ex.cpp): parse, walk, and reference forward.

dlib serializes a network through its C++ type: every wrapper writes its version and then its subnetwork first,
so the file holds all the wrapper versions top-down, then the input layer, then each layer's details bottom-up.
Tag and skip wrappers write only a version, so the topology (which tag an add_prev or skip refers to) comes from
the type, mirrored here as ANET_TYPE; the layer kinds and every number (filters, kernels, strides, pads, weights,
the input's mean pixel) are read from the file and checked against it.
"""
import torch
import torch.nn.functional as F

from tripletloss.dlib_import.serialization import DlibReader


def _block(stride):
    """BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>> bottom-up (BN = affine at inference)."""
    return [("con", stride), ("affine",), ("relu",), ("con", 1), ("affine",)]


def _ares():
    """relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>> bottom-up."""
    return [("tag", 1), *_block(1), ("add_prev", 1), ("relu",)]


def _ares_down():
    """relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>> bottom-up."""
    return [("tag", 1), *_block(2), ("tag", 2), ("skip", 1), ("avg_pool",), ("add_prev", 2), ("relu",)]


#: anet_type bottom-up, below loss_metric: con<32,7,7,2,2> affine relu max_pool<3,3,2,2>, then alevel4 (3 ares 32),
#: alevel3 (ares_down + 3 ares 64), alevel2 (ares_down + 2 ares 128), alevel1 (ares_down + 2 ares 256),
#: alevel0 (ares_down 256), avg_pool_everything, fc_no_bias<128>.
ANET_TYPE = [
    ("con", 2), ("affine",), ("relu",), ("max_pool",),
    *_ares() * 3,
    *_ares_down(), *_ares() * 3,
    *_ares_down(), *_ares() * 2,
    *_ares_down(), *_ares() * 2,
    *_ares_down(),
    ("avg_pool",), ("fc",),
]

WRAPPER_VERSIONS = {"tag": {1}, "skip": {1}, "layer": {1, 2}, "input_layer": {2, 3}}


def _read_con(r):
    """con_4 details -> dict(kind, weight (O,I,kh,kw), bias (O,), stride, pad)."""
    params = r.tensor().ravel()
    num_filters, nr, nc = r.int(), r.int(), r.int()
    stride, pad = (r.int(), r.int()), (r.int(), r.int())
    filters, _biases = r.alias_tensor(), r.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    if filters[0] != num_filters or filters[2:] != (nr, nc):
        r.fail(f"con_ filter shape {filters} disagrees with {num_filters} filters of {nr}x{nc}")
    size = num_filters * filters[1] * nr * nc
    return {"kind": "con", "weight": params[:size].reshape(filters), "bias": params[size:size + num_filters],
            "stride": stride, "pad": pad}


def _read_affine(r):
    """affine_ details -> dict(kind, gamma (C,), beta (C,))."""
    params = r.tensor().ravel()
    gamma = r.alias_tensor()
    r.alias_tensor()
    r.int()  # mode: CONV_MODE or FC_MODE; both are per-channel for our NCHW / NC inputs
    size = gamma[0] * gamma[1] * gamma[2] * gamma[3]
    return {"kind": "affine", "gamma": params[:size], "beta": params[size:2 * size]}


def _read_pool(kind):
    """Return a reader for max_pool_2 / avg_pool_2 details -> dict(kind, window, stride, pad); window 0 = global."""
    def read(r):
        window, stride, pad = (r.int(), r.int()), (r.int(), r.int()), (r.int(), r.int())
        return {"kind": kind, "window": window, "stride": stride, "pad": pad}
    return read


def _read_fc(r):
    """fc_2 details -> dict(kind, weight (out, in), bias (out,) or None)."""
    num_outputs, num_inputs = r.int(), r.int()
    params = r.tensor().ravel()
    r.alias_tensor()
    r.alias_tensor()
    has_bias = r.int() == 0  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):
        r.float()
    size = num_inputs * num_outputs
    weight = params[:size].reshape(num_inputs, num_outputs).T.copy()  # dlib computes x (N,in) @ W (in,out)
    return {"kind": "fc", "weight": weight, "bias": params[size:size + num_outputs] if has_bias else None}


DETAILS = {
    "con": ("con_4", _read_con),
    "affine": ("affine_", _read_affine),
    "relu": ("relu_", lambda r: {"kind": "relu"}),
    "max_pool": ("max_pool_2", _read_pool("max_pool")),
    "avg_pool": ("avg_pool_2", _read_pool("avg_pool")),
    "add_prev": ("add_prev_", lambda r: {"kind": "add_prev"}),
    "fc": ("fc_2", _read_fc),
}


def _read_layer_state(r, version, on_input):
    """Skip an add_layer's trailing state: 3 bools and its cached tensors (all unused at inference)."""
    for _ in range(3):
        r.bool()
    r.tensor()  # x_grad
    r.tensor()  # cached_output
    if on_input:
        r.tensor()  # grad_final
        if version >= 3:
            r.int()  # sample expansion factor
    elif version == 2:
        r.tensor()  # params_grad


def parse_dlib_resnet(data, name="<bytes>"):
    """Parse the bytes of dlib_face_recognition_resnet_model_v1.dat.

    Returns dict(input=dict(mean=[r,g,b], size=(nr,nc)), loss=dict(margin, dist_thresh), layers=[...]) where
    layers is ANET_TYPE bottom-up, each entry a dict with "kind" ("con", "affine", "relu", "max_pool",
    "avg_pool", "add_prev", "fc", "tag", "skip") and, for add_prev/tag/skip, the tag "id"; numeric parameters are
    numpy arrays in PyTorch layout. Raises DlibFormatError (a UserError) naming `name` on anything unexpected.
    """
    r = DlibReader(data, name)
    r.version({1})
    r.expect("loss_metric_2")
    loss = {"margin": r.float(), "dist_thresh": r.float()}
    wrappers = [spec[0] if spec[0] in ("tag", "skip") else "layer" for spec in reversed(ANET_TYPE)]
    wrappers[-1] = "input_layer"
    versions = [r.version(WRAPPER_VERSIONS[kind]) for kind in wrappers]
    r.expect("input_rgb_image_sized")
    mean = [r.float() for _ in range(3)]
    size = (r.int(), r.int())
    layers = []
    for spec, version in zip(ANET_TYPE, reversed(versions)):
        if spec[0] in ("tag", "skip"):
            layers.append({"kind": spec[0], "id": spec[1]})
            continue
        tag, read = DETAILS[spec[0]]
        r.expect(tag)
        layer = read(r)
        if spec[0] == "add_prev":
            layer["id"] = spec[1]
        _read_layer_state(r, version, on_input=not layers)
        layers.append(layer)
    if r.pos != len(r.data):
        r.fail(f"{len(r.data) - r.pos} trailing bytes after the network")
    return {"input": {"mean": mean, "size": size}, "loss": loss, "layers": layers}


def add_prev(a, b):
    """dlib's add_prev_ / tt::add: sum two NCHW tensors, zero-padding each to the larger size in C, H and W."""
    shape = [max(x, y) for x, y in zip(a.shape, b.shape)]

    def grow(t):
        pads = []
        for have, want in zip(reversed(t.shape), reversed(shape)):
            pads += [0, want - have]
        return F.pad(t, pads)
    return grow(a) + grow(b)


def _forward_layer(layer, x):
    """Apply one parsed compute layer (dlib semantics) to x."""
    kind = layer["kind"]
    if kind == "con":
        return F.conv2d(x, torch.from_numpy(layer["weight"]), torch.from_numpy(layer["bias"]),
                        stride=layer["stride"], padding=layer["pad"])
    if kind == "affine":
        return x * torch.from_numpy(layer["gamma"]).view(1, -1, 1, 1) + torch.from_numpy(layer["beta"]).view(1, -1, 1, 1)
    if kind == "relu":
        return F.relu(x)
    if kind == "fc":
        bias = None if layer["bias"] is None else torch.from_numpy(layer["bias"])
        return F.linear(x.flatten(1), torch.from_numpy(layer["weight"]), bias)
    if layer["window"] == (0, 0):
        return x.mean(dim=(2, 3))
    pool = F.max_pool2d if kind == "max_pool" else F.avg_pool2d
    return pool(x, layer["window"], layer["stride"], layer["pad"])


def reference_forward(parsed, x):
    """Run the parsed network on x (N,3,H,W, already (pixel - mean)/256) with plain torch functional ops.

    Returns dict(features=(N,256) global-average-pooled features, embedding=(N,128) descriptor).
    """
    tags, outputs = {}, {}
    for layer in parsed["layers"]:
        kind = layer["kind"]
        if kind == "tag":
            tags[layer["id"]] = x
        elif kind == "skip":
            x = tags[layer["id"]]
        elif kind == "add_prev":
            x = add_prev(x, tags[layer["id"]])
        else:
            x = _forward_layer(layer, x)
            if kind == "avg_pool" and layer["window"] == (0, 0):
                outputs["features"] = x
    outputs["embedding"] = x
    return outputs


class _Walk:
    """State of the walk from parsed dlib layers to a YAML layer list: current blob, its shape, tags, counters."""

    def __init__(self, channels, size):
        self.top, self.shape = "data", (channels, size, size)
        self.tags, self.counts = {}, {}
        self.layers, self.params = [], {}

    def name(self, prefix):
        """Return the next unused name `<prefix><n>` (n counts from 1 per prefix)."""
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        return f"{prefix}{self.counts[prefix]}"

    def add(self, layer, shape, **params):
        """Append `layer` reading the current blob (unless it names its bottom), make it current, store params."""
        previous = self.layers[-1]["name"] if self.layers else "data"
        bottom = layer.pop("bottom", self.top)
        head = {"name": layer.pop("name"), "type": layer.pop("type")}
        if bottom != previous:
            head["bottom"] = bottom
        self.layers.append({**head, **layer})
        self.top, self.shape = head["name"], shape
        for key, value in params.items():
            self.params[f"{head['name']}.{key}"] = value


def _out_size(size, window, stride, pad):
    """Spatial output size of a conv / pool window (floor mode, as in dlib and torch)."""
    return (size + 2 * pad - window) // stride + 1


def _walk_layer(walk, layer):
    """Translate one parsed dlib layer into YAML layers on `walk`."""
    kind, channels, size = layer["kind"], walk.shape[0], walk.shape[-1]
    if kind == "tag":
        walk.tags[layer["id"]] = (walk.top, walk.shape)
    elif kind == "skip":
        walk.top, walk.shape = walk.tags[layer["id"]]
    elif kind == "con":
        out, _, k, _ = layer["weight"].shape
        size = _out_size(size, k, layer["stride"][0], layer["pad"][0])
        walk.add({"name": walk.name("conv"), "type": "conv", "num_output": out, "kernel_size": k,
                  "stride": layer["stride"][0], "pad": layer["pad"][0]},
                 (out, size, size), weight=layer["weight"], bias=layer["bias"])
    elif kind == "affine":
        walk.add({"name": walk.name("affine"), "type": "affine"}, walk.shape, weight=layer["gamma"], bias=layer["beta"])
    elif kind == "relu":
        walk.add({"name": walk.name("relu"), "type": "relu"}, walk.shape)
    elif kind == "add_prev":
        tag_top, tag_shape = walk.tags[layer["id"]]
        size = max(size, tag_shape[-1])
        walk.add({"name": walk.name("add"), "type": "eltwise", "bottom": [walk.top, tag_top], "zero_pad": True},
                 (max(channels, tag_shape[0]), size, size))
    elif kind == "fc":
        out = layer["weight"].shape[0]
        bias = {} if layer["bias"] is None else {"bias": layer["bias"]}
        walk.add({"name": f"fc{out}", "type": "fc", "num_output": out, "bias": bool(bias)}, (out,),
                 weight=layer["weight"], **bias)
    elif layer["window"] == (0, 0):
        walk.add({"name": "global_pool", "type": "pool", "pool": "ave", "global": True}, (channels, 1, 1))
        walk.add({"name": "features", "type": "flatten"}, (channels,))
    else:
        window, stride, pad = layer["window"][0], layer["stride"][0], layer["pad"][0]
        size = _out_size(size, window, stride, pad)
        walk.add({"name": walk.name("pool"), "type": "pool", "pool": "max" if kind == "max_pool" else "ave",
                  "kernel_size": window, "stride": stride, "pad": pad}, (channels, size, size))


def to_layer_list(parsed):
    """Walk a parsed network into our YAML form.

    Returns (spec, params): spec is a dict with name, input, layers (one dict per YAML layer, bottom named only
    where it is not the previous layer) and outputs {features: 256-d pooled blob, embedding: the 128-d fc};
    params maps "<layer name>.<param>" to a float32 numpy array (conv/fc weight and bias, affine weight = gamma
    and bias = beta).
    """
    size = parsed["input"]["size"][0]
    walk = _Walk(3, size)
    for layer in parsed["layers"]:
        _walk_layer(walk, layer)
    spec = {"name": "dlib_resnet_v1", "input": {"channels": 3, "size": size}, "layers": walk.layers,
            "outputs": {"features": "features", "embedding": walk.top}}
    return spec, walk.params

"""Exporting a checkpoint's embedding network for use outside Python's tripletloss: ONNX or TorchScript.

The exported graph takes the network input, a float32 (N, 3, S, S) tensor already preprocessed as the checkpoint's
preprocess dict says (aligned face, resized, centre-cropped, (pixel - mean) / std), and returns the (N, D)
embedding. A JSON file beside it (FILE.json) holds that preprocess dict, the alignment and the calibration.
"""
import json
from pathlib import Path

import torch
from torch import nn

from tripletloss.atomic import write_atomic
from tripletloss.engine.checkpoint import load_checkpoint
from tripletloss.inference import net_from_checkpoint
from tripletloss.prepare.record import alignment_of

FORMATS = ("onnx", "torchscript")


class EmbeddingModule(nn.Module):
    """A Net reduced to one tensor in (the network input) and one tensor out (blob `output`)."""

    def __init__(self, net, output="embedding"):
        super().__init__()
        self.net, self.output = net, output

    def forward(self, image):
        """Return blob `output` of the net for a (N, C, S, S) input tensor."""
        return self.net(image, [self.output])[self.output]


def embedding_module(ckpt, source):
    """Return (EmbeddingModule in eval mode, example input (2, C, S, S)) of checkpoint dict `ckpt`."""
    module = EmbeddingModule(net_from_checkpoint(ckpt, source)).eval()
    size = ckpt["preprocess"]["size"]
    return module, torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))


def export_model(model, out, fmt):
    """Export checkpoint `model` as `fmt` ("onnx" or "torchscript") to `out` and its settings to OUT.json;
    return the two Paths."""
    ckpt = load_checkpoint(model)
    module, example = embedding_module(ckpt, model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if fmt == "onnx":
            torch.onnx.export(module, (example,), str(out), input_names=["image"], output_names=["embedding"],
                              dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False)
        else:
            torch.jit.trace(module, example).save(str(out))
    sidecar = {"input": "image", "output": "embedding", "preprocess": ckpt["preprocess"],
               "alignment": alignment_of(ckpt["preprocess"]), "calibration": ckpt.get("calibration")}
    meta = write_atomic(out.with_name(out.name + ".json"), json.dumps(sidecar, indent=1) + "\n")
    return out, meta

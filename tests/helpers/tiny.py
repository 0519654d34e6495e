"""The tiny 32 px network used by fast training tests, its `--set` overrides, and an in-process stage run."""
import train

TINY_BACKBONE = """
name: tiny_backbone
input: {channels: 3, size: 32}
layers:
  - {name: conv1, type: conv, num_output: 8, kernel_size: 3, stride: 2, pad: 1}
  - {name: bn1, type: batchnorm}
  - {name: relu1, type: relu}
  - {name: res2, type: residual, num_output: 16, stride: 2}
  - {name: pool2, type: pool, pool: ave, global: true}
  - {name: fc8, type: fc, num_output: 32}
  - {name: bn8, type: batchnorm}
"""
TINY_SOFTMAX = """
include: [tiny_backbone.yaml]
layers:
  - {name: fc9, type: fc, num_output: $num_classes}
outputs: {logits: fc9, embedding: bn8}
"""
#: The tiny stage-1 net with dropout, for tests where exact resume and rank agreement must cover dropout's RNG.
TINY_SOFTMAX_DROPOUT = """
include: [tiny_backbone.yaml]
layers:
  - {name: drop8, type: dropout, ratio: 0.2}
  - {name: fc9, type: fc, num_output: $num_classes}
outputs: {logits: fc9, embedding: bn8}
"""
TINY_TRIPLET = """
include: [{file: tiny_backbone.yaml, lr_mult: 0}]
layers:
  - {name: fc9_1, type: fc, num_output: $embedding_size, bottom: bn8}
  - {name: norm, type: l2norm}
outputs: {features: bn8, embedding: norm}
"""


def tiny_overrides(tmp_path):
    """Write the tiny network's YAML files under `tmp_path`; return the `--set` overrides that use them."""
    nets = tmp_path / "nets"
    nets.mkdir(parents=True, exist_ok=True)
    for name, text in (("tiny_backbone", TINY_BACKBONE), ("softmax", TINY_SOFTMAX), ("triplet", TINY_TRIPLET)):
        (nets / f"{name}.yaml").write_text(text)
    return [f"softmax_net={nets / 'softmax.yaml'}", f"triplet_net={nets / 'triplet.yaml'}",
            "image_size=32", "resize_size=36", "num_workers=0", "softmax_batch_size=16",
            "identities_per_batch=4", "images_per_identity=4", "embedding_size=16", "log_every_steps=1",
            f"work_dir={tmp_path / 'runs'}"]


def run_stage(stage, data_dir, overrides, epochs, extra=()):
    """Run train.py's `train` in-process for one stage; return (final TrainState, run directory)."""
    args = ["--stage", stage, "--data-dir", str(data_dir), "--epochs", str(epochs), *extra]
    for item in overrides:
        args += ["--set", item]
    state, run_dir = train.train(train.parse_args(args))
    return state, run_dir

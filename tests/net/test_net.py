"""The YAML layer-list builder: shapes, errors naming file and layer, lr_mult/decay_mult semantics."""
import pytest
import torch

from tripletloss import ROOT
from tripletloss.errors import NetSpecError
from tripletloss.net import Net, build_net, load_spec


def write(tmp_path, text, name="net.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_stages_build_and_share_backbone_names():
    softmax = build_net(ROOT / "prototxt_like/softmax.yaml", {"num_classes": 7})
    triplet = build_net(ROOT / "prototxt_like/triplet.yaml", {"embedding_size": 128})
    out = softmax(torch.randn(2, 3, 96, 96))
    assert out["logits"].shape == (2, 7) and out["embedding"].shape == (2, 256)
    emb = triplet.eval()(torch.randn(3, 3, 96, 96))["embedding"]
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    backbone = {k for k in triplet.layers.state_dict() if not k.startswith(("fc9_1", "norm"))}
    assert backbone <= set(softmax.layers.state_dict())


def test_lr_mult_zero_freezes_and_keeps_batchnorm_in_eval(tmp_path):
    net = build_net(ROOT / "prototxt_like/triplet.yaml", {"embedding_size": 16}).train()
    assert net.layers["bn1"].training is False and net.layers["fc9_1"].training is True
    assert not any(p.requires_grad for p in net.layers["conv1"].parameters())
    groups = net.param_groups(weight_decay=1e-3)
    params = [p for g in groups for p in g["params"]]
    assert {id(p) for p in params} == {id(p) for p in net.layers["fc9_1"].parameters()}
    by_mult = sorted((g["lr_mult"], g["weight_decay"]) for g in groups)
    assert by_mult == [(1.0, pytest.approx(1e-3)), (2.0, 0.0)]


def test_running_stats_of_frozen_batchnorm_do_not_move():
    net = build_net(ROOT / "prototxt_like/triplet.yaml", {"embedding_size": 16}).train()
    before = net.layers["bn1"].running_mean.clone()
    net(torch.randn(4, 3, 96, 96) * 5 + 3)
    assert torch.equal(before, net.layers["bn1"].running_mean)


def test_include_overrides_and_variables(tmp_path):
    write(tmp_path, "input: {channels: 1, size: 8}\nlayers:\n  - {name: c, type: conv, num_output: 2, kernel_size: 3}\n",
          "base.yaml")
    path = write(tmp_path, "include: [{file: base.yaml, lr_mult: [0, 0]}]\nlayers:\n"
                           "  - {name: f, type: fc, num_output: $n}\noutputs: {out: f}\n")
    spec = load_spec(path, {"n": 5})
    assert [layer["lr_mult"] for layer in spec["layers"]] == [[0.0, 0.0], [1.0, 1.0]]
    assert build_net(path, {"n": 5})(torch.zeros(1, 1, 8, 8))["out"].shape == (1, 5)


def test_identity_filler_makes_fc_a_pass_through(tmp_path):
    path = write(tmp_path, "input: {channels: 6, size: 1}\nlayers:\n"
                           "  - {name: same, type: fc, num_output: 6, weight_filler: identity}\n"
                           "  - {name: wider, type: fc, num_output: 8, weight_filler: identity, bottom: data}\n"
                           "outputs: {same: same, wider: wider}\n")
    x = torch.randn(3, 6, 1, 1)
    out = build_net(path)(x)
    assert torch.equal(out["same"], x.flatten(1))
    assert torch.equal(out["wider"][:, :6], x.flatten(1)) and out["wider"][:, 6:].eq(0).all()


def test_specs_stored_before_an_optional_field_existed_still_build(tmp_path):
    """Checkpoints keep the resolved spec; one written before `weight_filler` existed lacks the key."""
    path = write(tmp_path, "input: {channels: 2, size: 1}\nlayers:\n  - {name: f, type: fc, num_output: 3}\n")
    spec = load_spec(path)
    del spec["layers"][0]["weight_filler"]
    assert Net(spec)(torch.zeros(1, 2, 1, 1))["f"].shape == (1, 3)


def test_eltwise_zero_pads_rows_and_columns_at_the_end():
    from tripletloss.net.layers import Eltwise
    small, big = torch.ones(1, 1, 2, 2), torch.zeros(1, 2, 3, 3)
    out = Eltwise(zero_pad=True)(small, big)
    assert out.shape == (1, 2, 3, 3) and out[0, 0, :2, :2].eq(1).all() and out.sum() == 4


def test_eltwise_pad_channels_and_concat(tmp_path):
    path = write(tmp_path, """input: {channels: 2, size: 4}
layers:
  - {name: a, type: conv, num_output: 3, kernel_size: 1, bottom: data}
  - {name: s, type: eltwise, zero_pad: true, bottom: [a, data]}
  - {name: c, type: concat, bottom: [s, data]}
outputs: {s: s, c: c}
""")
    net = build_net(path)
    x = torch.randn(1, 2, 4, 4)
    out = net(x)
    a = net.layers["a"](x)
    assert torch.allclose(out["s"][:, :2], a[:, :2] + x) and torch.allclose(out["s"][:, 2], a[:, 2])
    assert out["c"].shape == (1, 5, 4, 4)


@pytest.mark.parametrize("layers, message", [
    ("  - {name: x, type: convolution, num_output: 2}", "layer 'x': unknown type 'convolution'"),
    ("  - {name: x, type: conv, kernel_size: 3}", "layer 'x': missing field(s) ['num_output']"),
    ("  - {name: x, type: conv, num_output: 2, kernel_size: 3, stride_h: 2}", "layer 'x': unknown field(s)"),
    ("  - {name: x, type: conv, num_output: 2, kernel_size: 9}", "layer 'x': cannot build on input shape"),
    ("  - {name: x, type: relu, bottom: nowhere}", "layer 'x': bottom 'nowhere' is not produced"),
    ("  - {name: r, type: relu}\n  - {name: x, type: conv, num_output: 2, kernel_size: 1, bottom: [data, r]}",
     "layer 'x': a 'conv' layer takes one bottom, got 2"),
    ("  - {name: x, type: fc, num_output: $classes}", "layer 'x': variable $classes is not defined"),
    ("  - {name: x, type: relu}\n  - {name: x, type: relu, top: y}", "layer 'x': layer names must be unique"),
    ("  - {name: x, type: relu, lr_mult: -1}", "layer 'x': lr_mult must be a number >= 0"),
    ("  - {name: x, type: fc, num_output: 2, weight_filler: msra}", "weight_filler must be one of default, identity"),
])
def test_bad_layer_lists_fail_naming_file_and_layer(tmp_path, layers, message):
    path = write(tmp_path, "input: {channels: 3, size: 4}\nlayers:\n" + layers + "\n")
    with pytest.raises(NetSpecError) as err:
        build_net(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_yaml_syntax_and_missing_file(tmp_path):
    with pytest.raises(NetSpecError, match="not valid YAML"):
        load_spec(write(tmp_path, "layers: [ {name: x"))
    with pytest.raises(NetSpecError, match="no such layer-list file"):
        load_spec(tmp_path / "absent.yaml")


def test_frozen_batchnorm_without_affine_parameters_stays_in_eval(tmp_path):
    write(tmp_path, "input: {channels: 2, size: 4}\nlayers:\n  - {name: bn, type: batchnorm, affine: false}\n",
          "base.yaml")
    path = write(tmp_path, "include: [{file: base.yaml, lr_mult: 0}]\nlayers:\n"
                           "  - {name: f, type: fc, num_output: 3}\noutputs: {out: f}\n")
    net = build_net(path).train()
    assert net.frozen_layers() == ["bn"] and not net.layers["bn"].training
    before = net.layers["bn"].running_mean.clone()
    net(torch.randn(4, 2, 4, 4) + 3)
    assert torch.equal(before, net.layers["bn"].running_mean)

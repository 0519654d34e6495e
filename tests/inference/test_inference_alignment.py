"""Inference aligns raw photos exactly as `align` does: the alignment record, the in-memory aligner, faceless
photos left out and named, and the choice between the checkpoint's template, --landmarks and --aligned."""
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from tests.helpers.align import make_subset
from tripletloss.commands.model_args import chosen_alignment
from tripletloss.face_input import FaceAligner, align_options
from tripletloss.inference import Embedder
from tripletloss.net import build_net
from tripletloss.prepare.align import AlignOptions, align_dataset
from tripletloss.prepare.record import (
    RECORD_NAME,
    alignment_of,
    finetune_mismatch,
    read_record,
    with_alignment,
)
from tripletloss.prepare.templates import get_template

INNER = {"template": "innerEyesAndBottomLip", "size": 96, "margin": 0}


def test_legacy_template_key_and_records_from_data_dirs(tmp_path):
    assert alignment_of({"template": "dlib_chip_150"}) == {"template": "dlib_chip_150", "size": 150, "margin": 0}
    assert alignment_of({"size": 96}) is None
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / RECORD_NAME).write_text(json.dumps({**INNER, "tool": "x"}))
    assert read_record(f"{tmp_path / 'a'}:{tmp_path / 'b'}")["template"] == "innerEyesAndBottomLip"
    assert with_alignment({"size": 96}, tmp_path / "b") == {"size": 96, "align": INNER}
    assert with_alignment({"size": 96}, tmp_path / "a") == {"size": 96}


def test_fine_tuning_data_aligned_unlike_the_checkpoint_is_named_with_the_align_command(tmp_path):
    (tmp_path / "chips").mkdir()
    (tmp_path / "chips" / RECORD_NAME).write_text(json.dumps({"template": "dlib_chip_150", "size": 150, "margin": 0}))
    (tmp_path / "same").mkdir()
    (tmp_path / "same" / RECORD_NAME).write_text(json.dumps({**INNER, "tool": "x"}))
    assert finetune_mismatch({"align": INNER}, tmp_path / "same", "M.pt") is None
    assert finetune_mismatch({"size": 96}, tmp_path / "chips", "M.pt") is None      # the checkpoint names none
    other = finetune_mismatch({"align": INNER}, tmp_path / "chips", "M.pt")
    assert other == ("M.pt was trained on faces aligned with --landmarks innerEyesAndBottomLip --size 96, the "
                     "data_dir faces were aligned with --landmarks dlib_chip_150 --size 150: `python -m tripletloss "
                     "align RAW OUT --landmarks innerEyesAndBottomLip --size 96` aligns them the same way")
    assert "have no alignment.json" in finetune_mismatch({"template": "dlib_chip_150"}, tmp_path / "raw", "M.pt")


def args_for(tmp_path, **given):
    """The alignment options of an embedding command, as argparse would set them."""
    return SimpleNamespace(**{"model": "M.pt", "aligned": False, "landmarks": None, "data_dir": str(tmp_path),
                              **given})


def test_alignment_comes_from_checkpoint_or_landmarks_unless_aligned(tmp_path, capsys):
    assert chosen_alignment(args_for(tmp_path), {"align": INNER}) == INNER
    assert chosen_alignment(args_for(tmp_path, aligned=True), {"align": INNER}) is None
    outer = chosen_alignment(args_for(tmp_path, landmarks="outerEyesAndNose"), {})
    assert outer == {"template": "outerEyesAndNose", "size": 96, "margin": 0}
    assert capsys.readouterr().err == ""
    assert chosen_alignment(args_for(tmp_path), {}) is None
    assert capsys.readouterr().err.count("warning: M.pt records no alignment template") == 1
    (tmp_path / RECORD_NAME).write_text(json.dumps({**INNER, "tool": "x"}))  # an aligned folder: not re-aligned
    assert chosen_alignment(args_for(tmp_path), {"align": INNER}) is None
    assert capsys.readouterr().err == ""
    assert chosen_alignment(args_for(tmp_path), {"align": {**INNER, "size": 112}}) is None
    assert "was aligned with --landmarks innerEyesAndBottomLip --size 96" in capsys.readouterr().err


@pytest.fixture(scope="module")
def raw_and_aligned(celeba_dir, tmp_path_factory):
    """Raw celeba photos of 3 identities plus a faceless grey photo, and `align`'s output of them."""
    pytest.importorskip("dlib")
    work = tmp_path_factory.mktemp("align")
    files = make_subset(celeba_dir, work / "raw", identities=3, per_identity=2)
    blank = work / "raw" / files[0].parent.name / "zz_blank.jpg"
    cv2.imwrite(str(blank), np.full((250, 250, 3), 128, np.uint8))
    align_dataset(work / "raw", work / "out", AlignOptions(get_template(INNER["template"])), progress=False)
    return files + [blank], work / "out"


def test_raw_photos_embed_as_their_aligned_files_and_faceless_photos_are_left_out(raw_and_aligned, tmp_path,
                                                                                  capsys):
    files, out = raw_and_aligned
    assert {k: v for k, v in read_record(out).items() if k != "tool"} == INNER
    aligned = [out / f.parent.name / f"{f.stem}.png" for f in files[:-1]]
    (tmp_path / "net.yaml").write_text("input: {channels: 3, size: 96}\nlayers:\n"
                                       "  - {name: f, type: fc, num_output: 8}\noutputs: {embedding: f}\n")
    net = build_net(tmp_path / "net.yaml").eval()
    preprocess = {"size": 96, "resize": 96, "crop_fraction": 1.0, "mean": [127.5] * 3, "std": [128.0] * 3}
    embedder = Embedder(net, preprocess, aligner=FaceAligner(align_options(read_record(out))))
    emb, found = embedder.embed_faces(files + aligned[:1], progress=False)  # an aligned 96 px file is kept as is
    assert found.tolist() == [True] * 6 + [False, True] and emb.shape == (7, 8)
    err = capsys.readouterr().err
    assert f"left out: {files[-1]} (no face found" in err and "1 of 8 images without a usable face" in err
    assert np.allclose(emb, Embedder(net, preprocess).embed_paths(aligned + aligned[:1], progress=False),
                       atol=1e-6)


def test_inference_takes_align_face_options_and_names_fallback_faces(raw_and_aligned, capsys):
    import argparse

    from tripletloss.commands.face_args import face_options
    from tripletloss.commands.model_args import add_alignment_arguments
    parser = argparse.ArgumentParser()
    add_alignment_arguments(parser)
    args = parser.parse_args(["--detector", "auto", "--fallback", "center", "--skip-multi"])
    options = align_options(INNER, **face_options(args))
    assert (options.detector, options.fallback, options.skip_multi) == ("auto", "center", True)
    files, _ = raw_and_aligned
    faces = FaceAligner(options).faces(files, progress=False)
    assert all(face is not None for face in faces)        # the grey photo is aligned from the centred box...
    err = capsys.readouterr().err
    assert f"fallback: no face detected, landmarks from a centred box of 0.44 x the image: {files[-1]}" in err
    assert "left out:" not in err                         # ...and named, never silently mixed in


def test_an_undecodable_photo_is_named_with_its_reason_not_as_faceless(tmp_path, capsys):
    pytest.importorskip("dlib")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    assert FaceAligner(align_options(INNER)).faces([broken], progress=False) == [None]
    err = capsys.readouterr().err
    assert f"left out: {broken} (cannot decode image" in err
    assert "1 of 1 images without a usable face: left out" in err


def test_an_in_process_aligner_loads_dlib_models_once_until_they_change(tmp_path, monkeypatch):
    pytest.importorskip("dlib")
    from tripletloss.prepare import align
    loads = []
    real = align.load_detector
    monkeypatch.setattr(align, "_WORKER", {})
    monkeypatch.setattr(align, "load_detector", lambda kind: loads.append(kind) or real(kind))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    for options in (align_options(INNER), align_options(INNER), align_options(INNER, detector="auto")):
        FaceAligner(options).faces([broken], progress=False)
    assert loads == ["hog", "auto"]
    assert align._WORKER["options"].detector == "auto"

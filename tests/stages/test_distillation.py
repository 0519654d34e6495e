"""Distillation in stage 1: teacher descriptors matched by identity and file stem, computed once and cached, a
changed image never served from the old cache, mirrored targets for mirrored inputs, bad set-ups as one line, and
a student that learns to match a (tiny, random) teacher."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import train
from tests.helpers.tiny import run_stage, tiny_overrides
from tripletloss import ROOT
from tripletloss.data.dataset import FaceDataset
from tripletloss.data.samplers import ShuffledBatches
from tripletloss.data.transforms import flip_coin
from tripletloss.engine.checkpoint import FORMAT, load_checkpoint, save_atomic
from tripletloss.errors import ConfigError, UserError
from tripletloss.inference import compute_outputs, net_from_checkpoint
from tripletloss.net import build_net
from tripletloss.settings import load_settings
from tripletloss.stages.batches import TeacherBatches
from tripletloss.stages.restore import init_from_checkpoint, read_checkpoint
from tripletloss.stages.teacher import check_distill_width, copy_index, matching_copies, teacher_targets
from tripletloss.stages.training_data import load_training_data

CPU = torch.device("cpu")
TEACHER = """
name: tiny_teacher
input: {channels: 3, size: 40}
layers:
  - {name: conv1, type: conv, num_output: 6, kernel_size: 5, stride: 2}
  - {name: relu1, type: relu}
  - {name: pool1, type: pool, pool: ave, global: true}
  - {name: fc1, type: fc, num_output: 8}
outputs: {embedding: fc1}
"""
STUDENT = """
include: [tiny_backbone.yaml]
layers:
  - {name: fc9, type: fc, num_output: $num_classes}
  - {name: distill, type: fc, num_output: 8, bottom: bn8}
outputs: {logits: fc9, prelogits: bn8, distill: distill, embedding: distill}
"""
IDENTITIES = [f"s{i}" for i in range(1, 7)]


@pytest.fixture
def setup(tmp_path, orl_dir):
    """A random tiny teacher (40 px input), its copies of 6 ORL identities as 40 px PNGs (the last image of each
    identity has none), the student YAML; returns (overrides, teacher path, copies folder)."""
    net = build_net_from_text(tmp_path / "teacher.yaml", TEACHER)
    teacher = tmp_path / "teacher.pt"
    save_atomic({"format": FORMAT, "net": net.spec, "model": net.layers.state_dict(), "stage": "imported",
                 "preprocess": {"size": 40, "resize": 40, "mean": [127.5] * 3, "std": [128.0] * 3}}, teacher)
    copies = tmp_path / "copies"
    for ident in IDENTITIES:
        (copies / ident).mkdir(parents=True)
        for n in range(1, 10):
            image = cv2.imread(str(orl_dir / ident / f"{n}.pgm"))
            cv2.imwrite(str(copies / ident / f"{n}.png"), cv2.resize(image, (40, 40)))
    sets = tiny_overrides(tmp_path)
    (tmp_path / "nets" / "student.yaml").write_text(STUDENT)
    (tmp_path / "ids.txt").write_text("\n".join(IDENTITIES) + "\n")
    sets += [f"data_dir={orl_dir}", f"train_identities={tmp_path / 'ids.txt'}", f"teacher={teacher}",
             f"teacher_data_dir={copies}", f"softmax_net={tmp_path / 'nets' / 'student.yaml'}"]
    return sets, teacher, copies


def build_net_from_text(path, text):
    path.write_text(text)
    return build_net(path)


def copy_of(copies, path):
    """The teacher's copy of training image `path` under `copies`."""
    return copies / Path(path).parent.name / f"{Path(path).stem}.png"


def direct_descriptors(teacher, files):
    """The teacher's embedding of each file and of its mirror image, (2, N, 8), computed without any cache."""
    ckpt = load_checkpoint(teacher)
    return compute_outputs(net_from_checkpoint(ckpt, teacher), [str(f) for f in files], ckpt["preprocess"],
                           "embedding", CPU, with_mirror=True, num_workers=0, progress=False)


def targets(sets, capsys):
    settings = load_settings(overrides=sets)
    paths = load_training_data(settings)[0]
    result = teacher_targets(settings, paths, CPU, progress=False)
    return paths, result, capsys.readouterr().out


def test_descriptors_are_the_teachers_and_computed_once(setup, capsys):
    sets, teacher, copies = setup
    paths, (descriptors, has_copy), out = targets(sets, capsys)
    assert len(paths) == 60 and "54 of 60 training images have a copy" in out and "computing" in out
    assert has_copy.tolist() == [not p.endswith("/10.pgm") for p in paths]
    expected = direct_descriptors(teacher, [copy_of(copies, p) for p in paths if not p.endswith("/10.pgm")])
    torch.testing.assert_close(descriptors[:, has_copy], expected)
    assert not descriptors[:, ~has_copy].any()
    _, (again, _), out = targets(sets, capsys)
    assert "descriptors from" in out and "computing" not in out and torch.equal(again, descriptors)


def test_each_data_root_takes_its_copies_from_the_teacher_root_in_the_same_place(tmp_path):
    """celeba_subset and celeba_wide both hold celeb_07201/celeb_07201_0001 (different photos): root i of
    teacher_data_dir serves root i of data_dir, whatever the extension."""
    for root, ext in (("a", "jpg"), ("b", "jpg"), ("chips_a", "png"), ("chips_b", "png")):
        (tmp_path / root / "person").mkdir(parents=True)
        (tmp_path / root / "person" / f"person_0001.{ext}").write_bytes(b"x")
    (tmp_path / "b" / "person" / "person_0002.jpg").write_bytes(b"x")
    data_dir = f"{tmp_path / 'a'}:{tmp_path / 'b'}"
    paths = [str(tmp_path / r / "person" / f) for r, f in (("a", "person_0001.jpg"), ("b", "person_0001.jpg"),
                                                            ("b", "person_0002.jpg"))]
    index = copy_index(f"{tmp_path / 'chips_a'}:{tmp_path / 'chips_b'}")
    assert matching_copies(paths, data_dir, index) == [tmp_path / "chips_a" / "person" / "person_0001.png",
                                                       tmp_path / "chips_b" / "person" / "person_0001.png", None]


def test_a_changed_copy_is_recomputed_not_served_from_the_cache(setup, capsys):
    sets, teacher, copies = setup
    paths, (before, _), _ = targets(sets, capsys)
    changed = copies / "s2" / "3.png"
    cv2.imwrite(str(changed), 255 - cv2.imread(str(changed)))
    _, (after, _), out = targets(sets, capsys)
    assert "computing" in out
    row = paths.index(next(p for p in paths if p.endswith("s2/3.pgm")))
    torch.testing.assert_close(after[:, row], direct_descriptors(teacher, [changed])[:, 0])
    assert not torch.allclose(after[:, row], before[:, row])
    others = [i for i in range(len(paths)) if i != row]
    assert torch.equal(after[:, others], before[:, others])


def test_a_cache_made_for_other_images_is_refused(setup, capsys):
    sets, _, _ = setup
    targets(sets, capsys)
    cache = next((Path(load_settings(overrides=sets)["work_dir"]) / "teacher_cache").glob("*.pt"))
    saved = torch.load(cache, weights_only=True)
    saved["copies"][0] = "elsewhere.png"
    save_atomic(saved, cache)
    with pytest.raises(UserError, match="teacher cache made for other images"):
        targets(sets, capsys)


def test_mirrored_inputs_get_the_mirrored_descriptor(setup):
    sets, _, _ = setup
    settings = load_settings(overrides=sets)
    paths, labels, _ = load_training_data(settings)
    n = len(paths)
    descriptors = torch.stack([torch.arange(n).float(), -torch.arange(n).float()])[..., None]  # +i plain, -i mirror
    has = torch.arange(n) % 2 == 0
    dataset = FaceDataset(paths, labels, {"size": 32, "resize": 36, "mean": [0] * 3, "std": [1] * 3})
    batches = TeacherBatches(dataset, ShuffledBatches(n, 16, 0), 0, CPU, descriptors, has)
    batches.set_epoch(1)
    got, batch = next(iter(batches)), batches.sampler.batches(1)[0]
    index = torch.tensor([i for i, _ in batch])
    sign = torch.tensor(np.where(flip_coin([s for _, s in batch]), -1.0, 1.0), dtype=torch.float32)
    assert 0 < (sign < 0).sum() < len(batch)
    assert torch.equal(got.teacher_descriptors[:, 0], sign * index.float())
    assert torch.equal(got.has_teacher, has[index]) and torch.equal(got.labels, torch.tensor(labels)[index])


@pytest.mark.parametrize("change, message", [
    (["teacher=missing/teacher.pt"], "teacher 'missing/teacher.pt' does not exist"),
    (["teacher_data_dir="], "teacher_data_dir must be set with teacher, one root"),
    (["teacher_data_dir=/tmp:/tmp"], "got 2 for 1"),
    (["teacher=", "softmax_weight=0"], "softmax_weight is 0 and no teacher is set"),
    (["softmax_net=NETS/softmax.yaml"], "no 'distill' output, needed by teacher"),
])
def test_bad_distillation_setups_are_one_line(setup, tmp_path, capsys, change, message):
    sets, _, _ = setup
    change = [c.replace("NETS", str(tmp_path / "nets")) for c in change]
    args = ["--stage", "softmax"] + [x for item in sets + change for x in ("--set", item)]
    with pytest.raises(SystemExit) as stop:
        train.main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_the_student_learns_to_match_the_teacher(setup, orl_dir):
    sets, teacher, copies = setup
    sets = sets + ["softmax_weight=0", "softmax_lr=0.1"]
    _, run_dir = run_stage("softmax", orl_dir, sets, epochs=2)
    ckpt = load_checkpoint(run_dir / "model.pt")
    student = net_from_checkpoint(ckpt, run_dir / "model.pt")
    paths = load_training_data(load_settings(overrides=sets))[0]
    paths = [p for p in paths if not p.endswith("/10.pgm")]
    teacher_out = direct_descriptors(teacher, [copy_of(copies, p) for p in paths])[0]
    initial = build_net(ckpt["net"]["file"], ckpt["variables"])
    gaps = [1 - F.cosine_similarity(compute_outputs(net, paths, ckpt["preprocess"], "distill", CPU,
                                                    num_workers=0, progress=False)[0], teacher_out).mean().item()
            for net in (initial, student)]
    assert gaps[1] < 0.5 * gaps[0], gaps


def test_stage2_on_a_distilled_model_starts_from_its_distilled_embedding(tmp_path):
    """triplet_distill.yaml: backbone and distill head frozen, fc9_1 the identity on the distilled descriptor."""
    student = build_net(ROOT / "prototxt_like" / "softmax_distill.yaml", {"num_classes": 5})
    save_atomic({"format": FORMAT, "net": student.spec, "model": student.layers.state_dict()}, tmp_path / "s.pt")
    net = build_net(ROOT / "prototxt_like" / "triplet_distill.yaml", {"embedding_size": 128})
    init_from_checkpoint(net, read_checkpoint(tmp_path / "s.pt"))
    x = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, distilled = net.eval()(x), student.eval()(x, ["distill"])["distill"]
    assert torch.equal(out["features"], distilled)
    torch.testing.assert_close(out["embedding"], F.normalize(distilled, dim=1))
    assert {"bn8", "distill"} <= set(net.frozen_layers()) and "fc9_1" not in net.frozen_layers()


def test_a_distill_output_of_another_width_than_the_teachers_is_one_config_error():
    net = build_net("prototxt_like/softmax_distill.yaml", {"num_classes": 3, "embedding_size": 16})
    check_distill_width(net, 128, "softmax_net prototxt_like/softmax_distill.yaml")
    with pytest.raises(ConfigError, match=r"softmax_distill\.yaml: its 'distill' output is 128-d but the teacher's "
                                          r"descriptor is 64-d"):
        check_distill_width(net, 64, "softmax_net prototxt_like/softmax_distill.yaml")

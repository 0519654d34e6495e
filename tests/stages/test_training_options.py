"""facenet's training options: optimizers by its names, exponential decay, the schedule file, weight averaging,
random rotation and per-image standardisation. Each changes what it says and nothing else."""
import numpy as np
import pytest
import torch

from tripletloss.data.transforms import make_preprocess, to_input
from tripletloss.engine.ema import WeightAverage
from tripletloss.engine.lr_file import rate_for_epoch, read_schedule_file
from tripletloss.engine.optimizers import make_optimizer
from tripletloss.engine.schedule import lr_factor
from tripletloss.errors import ConfigError
from tripletloss.settings import load_settings

#: facenet.train's optimizers: (torch class, its hyper-parameters that facenet fixes).
FACENET = {
    "ADAGRAD": (torch.optim.Adagrad, {"initial_accumulator_value": 0.1}),
    "ADADELTA": (torch.optim.Adadelta, {"rho": 0.9, "eps": 1e-6}),
    "ADAM": (torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 0.1}),
    "RMSPROP": (torch.optim.RMSprop, {"alpha": 0.9, "momentum": 0.9, "eps": 1.0}),
    "MOM": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
}


def _step_with(optimizer_name, settings):
    """Parameters after two steps of the named optimizer on a fixed quadratic, from fixed weights."""
    w = torch.nn.Parameter(torch.linspace(-1, 1, 6))
    opt = make_optimizer([{"params": [w], "lr": 0.1, "weight_decay": 1e-3}], dict(settings, optimizer=optimizer_name))
    for _ in range(2):
        opt.zero_grad()
        (w - 0.3).pow(2).sum().backward()
        opt.step()
    return w.detach()


@pytest.mark.parametrize("name", sorted(FACENET))
def test_facenet_optimizers_are_torch_optimizers_with_facenet_constants(name):
    settings = load_settings()
    kind, constants = FACENET[name]
    opt = make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(3))], "lr": 0.1, "weight_decay": 0.0}],
                         dict(settings, optimizer=name))
    assert type(opt) is kind
    assert {k: opt.defaults[k] for k in constants} == constants
    w = torch.nn.Parameter(torch.linspace(-1, 1, 6))
    reference = kind([{"params": [w], "lr": 0.1, "weight_decay": 1e-3}], **constants)
    for _ in range(2):
        reference.zero_grad()
        (w - 0.3).pow(2).sum().backward()
        reference.step()
    assert torch.equal(_step_with(name, settings), w.detach())


def test_the_toolkits_own_optimizers_are_unchanged():
    settings = load_settings(overrides=["momentum=0.8"])
    opt = make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.1}], settings)
    assert type(opt) is torch.optim.SGD and opt.defaults["momentum"] == 0.8 and not opt.defaults["nesterov"]
    adam = make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.1}],
                          dict(settings, optimizer="adam"))
    assert adam.defaults["eps"] == 1e-8


def test_exponential_decay_is_facenets_staircase_and_other_schedules_ignore_its_settings():
    s = load_settings(overrides=["lr_schedule=exponential", "learning_rate_decay_epochs=2",
                                 "learning_rate_decay_factor=0.5"])
    factors = [lr_factor(step, 10, 8, s) for step in (0, 19, 20, 39, 40, 79)]
    assert factors == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]
    for kind in ("cosine", "step", "constant"):
        base = load_settings(overrides=[f"lr_schedule={kind}"])
        other = dict(base, learning_rate_decay_epochs=1, learning_rate_decay_factor=0.1)
        assert [lr_factor(k, 10, 8, base) for k in range(80)] == [lr_factor(k, 10, 8, other) for k in range(80)]


SCHEDULE = "# Learning rate schedule\n0:  0.05\n\n60: 0.005  # after 60\n80: 0.0005\n91: -\n"


def test_schedule_file_rates_by_epoch(tmp_path):
    path = tmp_path / "schedule.txt"
    path.write_text(SCHEDULE)
    schedule = read_schedule_file(path)
    assert schedule == [(0, 0.05), (60, 0.005), (80, 0.0005), (91, -1.0)]
    assert [rate_for_epoch(schedule, e) for e in (1, 59, 60, 80, 90, 91, 500)] == \
        [0.05, 0.05, 0.005, 0.0005, 0.0005, -1.0, -1.0]


@pytest.mark.parametrize("text, line, what", [
    ("0: 0.1\n10 0.01\n", 2, "expected 'epoch: learning_rate'"),
    ("0: 0.1\n# note\nten: 0.01\n", 3, "expected 'epoch: learning_rate'"),
    ("0: 0.1\n5: fast\n", 2, "expected 'epoch: learning_rate'"),
    ("0: 0.1\n5: 0\n", 2, "the rate > 0 or -1"),
    ("0: 0.1\n10: 0.01\n10: 0.001\n", 3, "does not follow epoch 10"),
])
def test_schedule_file_errors_name_the_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "schedule.txt"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(overrides=["triplet_lr=-1", f"learning_rate_schedule_file={path}"])
    message = str(err.value)
    assert f"{path}:{line}:" in message and what in message and "\n" not in message


def test_lr_minus_one_needs_a_schedule_file(tmp_path):
    with pytest.raises(ConfigError, match="softmax_lr -1.*learning_rate_schedule_file"):
        load_settings(overrides=["softmax_lr=-1"])
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ConfigError, match="has no 'epoch: learning_rate' line"):
        load_settings(overrides=["softmax_lr=-1", f"learning_rate_schedule_file={tmp_path / 'empty.txt'}"])


def test_weight_average_follows_tensorflows_rule_and_restores_the_weights_exactly():
    net = torch.nn.Module()
    net.layers = torch.nn.ModuleDict({"fc": torch.nn.Linear(3, 2), "frozen": torch.nn.Linear(2, 2)})
    ema = WeightAverage(net, decay=0.9)
    expected = {k: v.detach().clone() for k, v in net.layers.named_parameters()}
    frozen = {k: v.detach().clone() for k, v in net.layers.named_parameters() if k.startswith("frozen")}
    for step in range(30):
        with torch.no_grad():
            net.layers["fc"].weight.add_(0.1 * (step + 1))
        ema.update(step)
        decay = min(0.9, (1 + step) / (10 + step))
        expected = {k: decay * expected[k] + (1 - decay) * p.detach() for k, p in net.layers.named_parameters()}
    live = {k: v.detach().clone() for k, v in net.layers.named_parameters()}
    for key, value in ema.state_dict().items():
        if key in expected:
            torch.testing.assert_close(value, expected[key], rtol=1e-6, atol=1e-6)
    assert all(torch.equal(ema.shadow[k], v) for k, v in frozen.items())  # never-changing weights stay exact
    with ema.applied():
        assert torch.equal(net.layers["fc"].weight, ema.shadow["fc.weight"])
    assert all(torch.equal(p, live[k]) for k, p in net.layers.named_parameters())


def _face():
    return np.random.default_rng(0).integers(0, 256, (60, 50, 3), dtype=np.uint8)


def test_random_rotation_changes_only_seeded_training_inputs():
    pre = make_preprocess(load_settings(overrides=["image_size=32", "resize_size=40"]))
    face = _face()
    plain = [to_input(face, pre, seed) for seed in (3, 4)]
    rotated = [to_input(face, pre, seed, random_rotate=True) for seed in (3, 4)]
    assert not any(torch.equal(p, r) for p, r in zip(plain, rotated))
    assert torch.equal(to_input(face, pre, None, random_rotate=True), to_input(face, pre, None))  # evaluation
    assert torch.equal(to_input(face, pre, 3, random_rotate=True), rotated[0])  # the seed fixes the angle


def test_per_image_standardisation_is_facenets_prewhiten():
    settings = load_settings(overrides=["image_size=32", "resize_size=32", "per_image_standardization=true"])
    pre = make_preprocess(settings)
    out = to_input(_face(), pre)
    assert pre["standardize"] and abs(out.mean().item()) < 1e-5 and out.std(unbiased=False).item() == \
        pytest.approx(1.0, rel=1e-4)
    flat = np.full((32, 32, 3), 90, np.uint8)  # std 0: facenet divides by 1/sqrt(size) instead
    assert torch.count_nonzero(to_input(flat, pre)) == 0
    fixed = to_input(_face(), dict(pre, standardize=False))
    assert torch.equal(fixed, to_input(_face(), make_preprocess(load_settings(
        overrides=["image_size=32", "resize_size=32"]))))

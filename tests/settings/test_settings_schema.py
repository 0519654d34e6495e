"""The settings declarations: config.py assigns exactly the declared keys, allowed values are the implementing
modules' own, --help lists every setting, per-stage settings come from their declared roles."""
import ast
import math
import re

import pytest
import torch

import train
from tripletloss import settings as settings_module
from tripletloss.engine.optimizers import BUILDERS, make_optimizer
from tripletloss.engine.schedule import SCHEDULES, lr_factor
from tripletloss.errors import ConfigError
from tripletloss.losses import DISTILL_DISTANCES, distill_loss
from tripletloss.mining import ALL_STRATEGIES, BACKENDS
from tripletloss.settings import apply_overrides, default_config_path, load_settings, validate
from tripletloss.settings_schema import SCHEMA, SECTIONS, stage_key, stage_keys, stage_settings

HEADER = re.compile(r"# -+ (.+)$")


def config_sections(path):
    """{section title: [keys assigned under it]} of config file `path`: its top-level assignments, grouped by the
    `# ---- title` line above them."""
    text = path.read_text()
    titles = {number: m.group(1) for number, line in enumerate(text.splitlines(), 1) if (m := HEADER.match(line))}
    sections = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign):
            title = titles[max(n for n in titles if n < node.lineno)]
            sections.setdefault(title, []).extend(target.id for target in node.targets)
    return sections


def test_config_py_assigns_exactly_the_declared_keys_in_their_sections():
    declared = {title: [s.key for s in section] for title, section in SECTIONS.items()}
    assert config_sections(default_config_path()) == declared
    assert len(SCHEMA) == sum(map(len, SECTIONS.values()))  # no key declared twice


@pytest.mark.parametrize("key, implemented", [
    ("selection", ALL_STRATEGIES), ("mining_backend", BACKENDS), ("optimizer", tuple(BUILDERS)),
    ("lr_schedule", tuple(SCHEDULES)), ("teacher_loss", tuple(DISTILL_DISTANCES)),
])
def test_allowed_values_are_the_implementing_modules(key, implemented):
    assert SCHEMA[key].choices == implemented
    for value in implemented:
        assert load_settings(overrides=[f"{key}={value}"])[key] == value


def test_every_declared_schedule_optimizer_and_teacher_loss_runs():
    settings = load_settings()
    for name in SCHEDULES:
        assert math.isfinite(lr_factor(25, 10, 8, dict(settings, lr_schedule=name)))
    params = [{"params": [torch.nn.Parameter(torch.ones(2))], "lr": 0.1, "weight_decay": 0.0}]
    for name in BUILDERS:
        assert isinstance(make_optimizer(params, dict(settings, optimizer=name)), torch.optim.Optimizer)
    student, teacher = torch.randn(3, 4), torch.randn(3, 4)
    for name in DISTILL_DISTANCES:
        assert distill_loss(student, teacher, torch.ones(3, dtype=torch.bool), name).item() > 0


def test_help_lists_every_setting_with_its_value_range_and_help(capsys):
    with pytest.raises(SystemExit) as done:
        train.parse_args(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "    margin = 0.2 (float > 0): triplet margin, on squared euclidean distances between unit vectors\n" in out
    assert "    softmax_lr = 0.05 (float in (0, 1e+30] or -1): base learning rate" in out
    assert "    selection = 'semihard' (semihard | violating | batch_hard | batch_all | pinguo): " in out
    assert all(f"    {key} = " in out for key in SCHEMA)


def test_help_without_a_readable_config_still_lists_the_settings(tmp_path, monkeypatch, capsys):
    broken = tmp_path / "config.py"
    broken.write_text("margin = = 0.2\n")
    monkeypatch.setattr(settings_module, "default_config_path", lambda: broken)
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    assert f"    margin (float > 0): {SCHEMA['margin'].help}\n" in capsys.readouterr().out


def test_a_typo_names_the_closest_setting():
    with pytest.raises(ConfigError) as err:
        apply_overrides({}, ["marign=0.3"])
    assert str(err.value) == "--set marign=0.3: unknown setting 'marign' (did you mean 'margin'?)"
    with pytest.raises(ConfigError) as err:
        validate(dict(load_settings(), identities_per_btach=16), source="my.py")
    assert str(err.value) == "my.py: unknown setting 'identities_per_btach' (did you mean 'identities_per_batch'?)"


def test_stage_settings_are_grouped_by_role():
    settings = load_settings(overrides=["softmax_lr=0.01", "triplet_epochs=3"])
    assert stage_settings(settings, "softmax") == {"net": settings["softmax_net"], "epochs": settings["softmax_epochs"],
                                                   "batch_size": settings["softmax_batch_size"], "lr": 0.01}
    assert stage_settings(settings, "triplet") == {"net": settings["triplet_net"], "epochs": 3,
                                                   "lr": settings["triplet_lr"]}
    assert stage_key("triplet", "lr") == "triplet_lr" and stage_keys("net") == ["softmax_net", "triplet_net"]
    assert "triplet_epochs=4" in train._overrides(train.parse_args(["--stage", "triplet", "--epochs", "4"]))

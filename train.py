"""Train a face-embedding model in two stages (the Caffe "tripletloss" recipe).

    python train.py --stage softmax      # stage 1: backbone + fc9 softmax classifier
    python train.py --stage triplet      # stage 2: frozen backbone + fc9_1 (L2-normalised), triplet loss

Settings come from config.py; `--set KEY=VALUE` overrides any of them for one run.
"""
import argparse
import sys
from pathlib import Path

import torch

from tripletloss.cli import OneLineParser
from tripletloss.console import is_main, say
from tripletloss.engine import distributed, rng
from tripletloss.engine.checkpoint import latest_checkpoint, load_exact
from tripletloss.engine.loop import Interrupted, TrainLoop
from tripletloss.engine.run_dir import (
    claim_run_dir,
    create_run_dir,
    latest_run_dir,
    refuse_if_running,
    release_run_dirs,
)
from tripletloss.errors import UserError
from tripletloss.settings import ADDED_LATER, apply_overrides, load_settings, missing_root, settings_help, validate
from tripletloss.settings_schema import stage_key, stage_settings
from tripletloss.stages.factory import STAGES, build_stage
from tripletloss.stages.nets import check_input_size
from tripletloss.stages.restore import read_checkpoint
from tripletloss.stages.training_data import load_training_data, synthetic_validation


class _TrainParser(OneLineParser):
    """train.py's parser: --help ends with the list of settings, built only when help is shown."""

    def format_help(self):
        """Return the help text: usage, options, then every setting with config.py's value and its help."""
        self.epilog = "settings (values from config.py; --set KEY=VALUE overrides one):\n" + settings_help()
        return super().format_help()


def parse_args(argv=None):
    """Parse train.py's command line; return the argparse namespace."""
    p = _TrainParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=sorted(STAGES), required=True, help="which stage to train")
    p.add_argument("--config", default=None, help="settings file (default: config.py in the repository)")
    p.add_argument("--data-dir", help="image folder(s), one sub-folder per identity; several joined with ':'")
    p.add_argument("--work-dir", help="where run directories are created")
    p.add_argument("--epochs", type=int, help="epochs of this stage")
    p.add_argument("--resume", nargs="?", const="latest", metavar="PATH",
                   help="continue a run: its directory or checkpoint (default: the latest run of this stage); "
                        "--set, --data-dir and --epochs change its saved settings")
    p.add_argument("--finetune", metavar="CKPT",
                   help="initialise from this checkpoint (layers matching by name and shape)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting for this run (repeatable; the settings are listed below)")
    return p.parse_args(argv)


def _overrides(args):
    out = list(args.set)
    for flag, key in (("data_dir", "data_dir"), ("work_dir", "work_dir"), ("epochs", stage_key(args.stage, "epochs"))):
        if getattr(args, flag) is not None:
            out.append(f"{key}={getattr(args, flag)}")
    return out


def _resume_checkpoint(args, settings):
    """Find the checkpoint --resume points at: a file, a run directory, or the latest run of the stage."""
    target = latest_run_dir(settings["work_dir"], args.stage) if args.resume == "latest" else Path(args.resume)
    if target is None:
        raise UserError(f"--resume: no '{args.stage}' run in {settings['work_dir']} to resume")
    path = latest_checkpoint(target) if target.is_dir() else target
    if path is None:
        raise UserError(f"--resume: {target} holds no checkpoint yet (step-*.pt); start a new run instead")
    return path


def _resumed_settings(ckpt, path, args):
    """The settings saved in checkpoint dict `ckpt` (from `path`) with the command line's overrides applied.

    Says the settings that change; raises UserError if the checkpoint is of the other stage.
    """
    if not {"config", "state", "optimizer"} <= ckpt.keys():
        raise UserError(f"--resume {path}: a final model, not a resumable checkpoint (resume its run directory, "
                        "or start from it with --finetune)")
    if ckpt.get("stage") != args.stage:
        raise UserError(f"--resume {path}: a '{ckpt.get('stage')}' checkpoint, not '{args.stage}' "
                        f"(use --stage {ckpt.get('stage')})")
    saved = apply_overrides(dict(ADDED_LATER, **ckpt["config"]), _overrides(args))
    changed = [f"{k}={v}" for k, v in saved.items() if v != ckpt["config"].get(k)]
    if changed:
        say(f"resuming with changed settings: {', '.join(changed)}")
    return saved


def _new_run(settings, stage):
    """Create and claim (lock) a fresh run directory for `stage`; return it."""
    run_dir = create_run_dir(settings["work_dir"], stage, settings)
    claim_run_dir(run_dir)
    return run_dir


def train(args):
    """Run one stage as the parsed `args` say; return the finished TrainState and run directory.

    The run directory stays locked against other trainings until it returns or raises.
    """
    try:
        return _train(args)
    finally:
        release_run_dirs()


def _check_data_dir_flag(args):
    """UserError naming --data-dir (not config.py) when one of its ':'-joined roots is not a folder."""
    root = missing_root(args.data_dir or "")
    if root is not None:
        raise UserError(f"--data-dir: '{root}' is not a directory")


def _open_resumed_run(args, settings):
    """Find, lock and read (once) the checkpoint --resume points at; return (its stages.restore.Checkpoint, the
    run's settings: the saved ones with the command line's overrides)."""
    path = _resume_checkpoint(args, settings)
    if is_main():  # alone probes and holds the lock, before reading: this run may still be pruning checkpoints
        refuse_if_running(path.parent)
    resumed = read_checkpoint(path)
    saved = _resumed_settings(resumed.contents, path, args)
    if is_main():
        claim_run_dir(path.parent)
    return resumed, validate(saved, source=f"{path} (saved config)")


def _initial_checkpoint(args, resumed):
    """The stages.restore.Checkpoint the stage's net starts from, or None: a resumed triplet or fine-tuning run
    rebuilds from its own checkpoint `resumed` (its backbone, preprocess and freeze schedule); else --finetune's."""
    if resumed is not None and (args.stage == "triplet" or resumed.contents.get("finetuned")):
        return resumed
    return read_checkpoint(args.finetune) if args.finetune else None


def _with_validation(settings):
    """`settings`, evaluating on the built-in synthetic validation pairs when neither data_dir nor lfw_dir is
    set (the synthetic default run)."""
    if settings["data_dir"] or settings["lfw_dir"]:
        return settings
    return dict(settings, **distributed.main_first(synthetic_validation))


def _train(args):
    _check_data_dir_flag(args)
    settings = load_settings(args.config, _overrides(args))
    resumed = None
    if args.resume:
        resumed, settings = _open_resumed_run(args, settings)
    device = distributed.setup(settings["device"])  # joins torchrun's process group when launched by torchrun
    rank, world = distributed.rank(), distributed.world_size()
    rng.seed_everything(settings["seed"] + rank)  # own dropout draws per rank; DDP copies rank 0's initial weights
    torch.use_deterministic_algorithms(settings["deterministic"], warn_only=True)
    check_input_size(settings, stage_key(args.stage, "net"))  # before any data is read
    settings = _with_validation(settings)
    data = distributed.main_first(load_training_data, settings)
    stage = build_stage(args.stage, settings, data, device, _initial_checkpoint(args, resumed), rank, world)
    if resumed is None:
        run_dir = distributed.broadcast_object(_new_run(settings, args.stage) if is_main() else None)
    else:
        run_dir = resumed.path.parent
        weights = resumed.contents.get("live_model", resumed.contents["model"])  # live: with moving_average_decay
        load_exact(stage.net, weights, resumed.path)
    own = stage_settings(settings, args.stage)
    loop = TrainLoop(stage, settings, run_dir, own["epochs"], own["lr"], device)
    if resumed is not None:
        loop.resume_from(resumed.contents)
        say(f"resuming {run_dir} at epoch {loop.state.epoch + 1}, batch {loop.state.batch}, step {loop.state.step}")
    state = loop.run()
    distributed.barrier()  # model.pt is written when any rank returns
    return state, run_dir


def main(argv=None):
    """Command-line entry: train, print a summary; exit 2 on a user error, 128+signal when interrupted."""
    args = parse_args(argv)
    try:
        state, run_dir = train(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # full disk, read-only or missing work dir: checkpoints written so far are whole
        print(f"error: {exc.filename or 'writing the run'}: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(128 + exc.signum)
    say(f"done: {state.epoch} epochs, {state.step} steps ({state.skipped} skipped) in {run_dir}")
    say(f"model: {run_dir / 'model.pt'}")
    if state.bad_files:
        say(f"{len(state.bad_files)} undecodable images were replaced during training:")
        for path in state.bad_files:
            say(f"  {path}")


if __name__ == "__main__":
    main()

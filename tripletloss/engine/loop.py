"""The training loop shared by both stages: optimisation, checkpoints, exact resume, signals, NaN guard, logging.

A stage (the interface is tripletloss/stages/base.py's Stage) supplies the net, its batches, its phases, the
objective, evaluation and the model record. The loop owns the rest: the model that runs the forward pass (the net,
or its DistributedDataParallel wrapper), the optimizer and the learning rate.
"""
import contextlib
import signal
import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm import tqdm

from tripletloss.console import is_main, say, warn
from tripletloss.engine import distributed, precision, rng
from tripletloss.engine.checkpoint import first_nonfinite, latest_checkpoint, prune_checkpoints, save_atomic
from tripletloss.engine.ema import WeightAverage
from tripletloss.engine.health import HealthMonitor
from tripletloss.engine.lr_file import STOP, rate_for_epoch, read_schedule_file
from tripletloss.engine.metrics_log import MetricsLog
from tripletloss.engine.optimizers import make_optimizer
from tripletloss.engine.schedule import lr_factor
from tripletloss.errors import UserError
from tripletloss.resources import resolve_path


class Interrupted(Exception):
    """Raised after SIGINT/SIGTERM once the current step is done and a checkpoint is written."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


class NonFiniteError(UserError):
    """Too many consecutive steps with a non-finite loss or gradient."""


@dataclass
class TrainState:
    """Where training stands: epoch in progress, batches of it done, total steps, guard counters, best metric."""
    epoch: int = 0
    batch: int = 0
    step: int = 0
    nonfinite: int = 0
    skipped: int = 0
    best: float = float("-inf")
    bad_files: list = field(default_factory=list)


class _SignalFlag:
    """Records SIGINT/SIGTERM instead of dying, so the loop can finish its step and checkpoint."""

    def __init__(self):
        self.signum = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)


def timed(batches):
    """Yield (batch, seconds spent waiting for it) for each batch of the iterable `batches`."""
    it = iter(batches)
    while True:
        start = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        yield batch, time.perf_counter() - start


class StepTimes:
    """Seconds per step spent waiting for the batch and computing (forward, backward, update), summed
    since the last `means()`, which logs them as `time/loader_wait` and `time/compute`."""

    def __init__(self):
        self._reset()

    def _reset(self):
        self.wait = self.compute = 0.0
        self.steps = 0

    def add(self, wait, compute):
        """Count one step that waited `wait` and computed `compute` seconds."""
        self.wait, self.compute, self.steps = self.wait + wait, self.compute + compute, self.steps + 1

    def means(self):
        """Return {time/loader_wait, time/compute: mean seconds per step} since the last call, and start over."""
        out = {"time/loader_wait": self.wait / self.steps, "time/compute": self.compute / self.steps}
        self._reset()
        return out


def stage_state(ckpt):
    """The stage's training state (Stage.training_state) saved in checkpoint dict `ckpt`; older checkpoints call
    it job_state."""
    return ckpt.get("stage_state", ckpt.get("job_state", {}))


def set_learning_rate(param_groups, lr):
    """Set each optimizer param group's rate to `lr` times the group's lr_mult (from Net.param_groups)."""
    for group in param_groups:
        group["lr"] = lr * group["lr_mult"]


class TrainLoop:
    """Runs `stage` (a stages.base.Stage) for `epochs` epochs in `run_dir`; `resume_from(checkpoint)` first to
    continue a run. The main process alone writes checkpoints and logs and draws the progress bar."""

    def __init__(self, stage, settings, run_dir, epochs, base_lr, device):
        self.stage, self.settings, self.run_dir = stage, settings, run_dir
        self.epochs, self.base_lr, self.device, self.is_main = epochs, base_lr, device, is_main()
        self.state = TrainState()
        self.log = MetricsLog(run_dir, stage.name, enabled=self.is_main)
        self.model, self.optimizer, self.phase = stage.net, None, None
        self.steps_per_epoch = stage.batches.per_epoch()
        decay, schedule = settings["moving_average_decay"], settings["learning_rate_schedule_file"]
        self.ema = WeightAverage(stage.net, decay) if decay > 0 else None
        self.schedule = read_schedule_file(resolve_path(schedule)) if self.base_lr == STOP else None
        self.health = HealthMonitor(settings["margin"], settings["health_intervals"])
        self.times = StepTimes()
        self.precision = precision.resolve(settings["precision"], device)
        say(f"precision: {self.precision} (precision={settings['precision']})")

    def _enter_phase(self, phase):
        """Apply the stage's phase `phase` and build its model wrapper and optimizer, unless it is the current one."""
        if phase != self.phase:
            self.phase = phase
            self.stage.apply_phase(phase)
            model = distributed.wrap(self.stage.net, self.device)  # DDP registers the trainable params
            self.model = precision.wrap(model, self.precision, self.device)
            groups = self.stage.net.param_groups(self.settings["weight_decay"])
            set_learning_rate(groups, max(self._lr(), 0.0))
            self.optimizer = make_optimizer(groups, self.settings)

    def resume_from(self, ckpt):
        """Restore optimizer, RNG and loop state from checkpoint dict `ckpt` (the model is already loaded)."""
        self.state = TrainState(**ckpt["state"])
        # The phase the optimizer was saved in: an epoch-end checkpoint precedes the next epoch's phase switch.
        saved = ckpt.get("phase")
        self._enter_phase(self.stage.phase_from_checkpoint(saved) if saved else self.stage.phase(self.state.epoch))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.ema is not None and "live_model" in ckpt:
            self.ema.load(ckpt["model"])
        self.stage.load_training_state(stage_state(ckpt))
        rng.restore(distributed.own_rng_state(ckpt))
        self.log.resume_at(self.state.epoch, self.state.step)

    def checkpoint(self, name=None):
        """Write a resumable checkpoint (step-N.pt, or `name`) and prune old ones; return its path.

        Every rank must call it (each rank's RNG state is collected); rank 0 writes and returns the path.
        """
        self._check_weights()
        rng_ranks = distributed.gather_to_main(rng.capture())
        if not self.is_main:
            return None
        path = self.run_dir / (name or f"step-{self.state.step}.pt")
        save_atomic(dict(self._model_record(), optimizer=self.optimizer.state_dict(),
                         state=asdict(self.state), phase=self.phase, rng=rng_ranks[0], rng_ranks=rng_ranks,
                         stage_state=self.stage.training_state(), config=dict(self.settings)), path)
        if name is None:
            prune_checkpoints(self.run_dir, self.settings["keep_checkpoints"])
        return path

    def _model_record(self):
        """The stage's model record; with a moving average its `model` holds the averaged weights (what evaluation
        and fine-tuning use) and `live_model` the trained ones (what a resume continues from)."""
        record = self.stage.model_record()
        if self.ema is None:
            return record
        return dict(record, model=self.ema.state_dict(), live_model=record["model"])

    def _averaged(self):
        """Context in which the net holds the moving-average weights (a no-op without one)."""
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    def _schedule_stops(self):
        """True (with a note) when the schedule file's rate for the coming epoch is -1: stop training there."""
        if self.schedule is None or rate_for_epoch(self.schedule, self.state.epoch + 1) != STOP:
            return False
        say(f"{self.settings['learning_rate_schedule_file']}: learning rate -1 at epoch {self.state.epoch + 1}: "
            "training stops")
        return True

    def run(self):
        """Train to the last epoch (or a -1 of the schedule file); write model.pt; return the final TrainState."""
        with _SignalFlag() as flag:
            while self.state.epoch < self.epochs and not self._schedule_stops():
                self._enter_phase(self.stage.phase(self.state.epoch))
                self._run_epoch(flag)
                self._end_epoch()
        self._check_weights()
        if self.is_main:
            record = self._model_record()
            record.pop("live_model", None)
            save_atomic(record, self.run_dir / "model.pt")
        self.log.close()
        return self.state

    def _run_epoch(self, flag):
        state, stage = self.state, self.stage
        stage.batches.set_epoch(state.epoch, state.batch)
        bar = tqdm(timed(stage.batches), total=self.steps_per_epoch, initial=state.batch, disable=not self.is_main,
                   dynamic_ncols=True, desc=f"{stage.name} epoch {state.epoch + 1}/{self.epochs}")
        stage.net.train()
        for batch, wait in bar:
            self._note_bad_files(batch.bad_files)
            start = time.perf_counter()
            stats = self._step(batch)
            self.times.add(wait, time.perf_counter() - start)
            state.batch += 1
            state.step += 1
            bar.set_postfix(loss=f"{stats['loss']:.4f}", lr=f"{stats['lr']:.3g}")
            if state.step % self.settings["log_every_steps"] == 0:
                self._log_train(stats)
            every = self.settings["checkpoint_every_steps"]
            if every and state.step % every == 0:
                self.checkpoint()
            signum = distributed.agreed_signal(flag.signum)  # all ranks stop at the same step
            if signum is not None:
                path = self.checkpoint()
                bar.close()
                launcher = "torchrun <the same options>" if distributed.launched() else "python"
                raise Interrupted(f"stopped by {signal.Signals(signum).name} at epoch {state.epoch + 1}, "
                                  f"step {state.step}; checkpoint {path}; continue with: {launcher} train.py --stage "
                                  f"{stage.name} --resume {self.run_dir}", signum)

    def _log_train(self, stats):
        """Log a step's stats, and a warning (printed once, logged as health/<problem> = 1) when training is sick."""
        state = self.state
        self.log.log({**{f"train/{k}": v for k, v in stats.items()}, **self.times.means()}, state.step, state.epoch)
        for problem, message in self.health.check(stats):
            warn(message)
            self.log.log({f"health/{problem}": 1.0}, state.step, state.epoch)

    def _lr(self):
        """The learning rate of the coming step: the stage's base rate (the schedule file's for this epoch when it
        is -1) scaled by the lr_schedule."""
        base = self.base_lr
        if self.schedule is not None:
            base = rate_for_epoch(self.schedule, self.state.epoch + 1)
        return base * lr_factor(self.state.step, self.steps_per_epoch, self.epochs, self.settings)

    def _step(self, batch):
        """One optimizer step on `batch` (a stages.batches.Batch), or a skipped one; return its stats."""
        state = self.state
        lr = self._lr()
        set_learning_rate(self.optimizer.param_groups, lr)
        self._buffers = [b.clone() for b in self.stage.net.buffers()]  # BatchNorm statistics, for _skip to restore
        self.optimizer.zero_grad(set_to_none=True)
        loss, stats = self.stage.objective(self.model, batch, state.step)
        stats = dict(stats, lr=lr)  # the rate this step used (logged beside its loss)
        finite = distributed.all_finite(loss)  # under DDP every rank joins the backward and skips alike
        if finite or distributed.is_active():
            loss.backward()
        if not finite or not self._grads_finite():
            return self._skip(stats)
        if self.settings["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(self.stage.net.parameters(), self.settings["grad_clip"])
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(state.step)
        self.stage.after_step()
        state.nonfinite = 0
        return dict(stats, loss=loss.item())

    def _grads_finite(self):
        grads = [p.grad.isfinite().all() for p in self.stage.net.parameters() if p.grad is not None]
        return bool(torch.stack(grads).all()) if grads else True  # one device sync, not one per tensor

    def _skip(self, stats):
        state = self.state
        state.nonfinite += 1
        state.skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        for buf, saved in zip(self.stage.net.buffers(), self._buffers):  # undo the forward pass's BatchNorm update
            buf.copy_(saved)
        warn(f"non-finite loss or gradient at step {state.step + 1}: step skipped ({state.nonfinite} in a row)")
        if state.nonfinite >= self.settings["max_nonfinite_steps"]:
            raise NonFiniteError(f"{state.nonfinite} consecutive steps with a non-finite loss or gradient "
                                 f"(max_nonfinite_steps); stopped at step {state.step + 1}; {self._last_good()}")
        return dict(stats, loss=float("nan"))

    def _check_weights(self):
        """Raise NonFiniteError instead of saving weights that hold NaN/inf (an update overflowed them)."""
        problem = first_nonfinite(self.stage.net.layers.state_dict())
        if problem:
            raise NonFiniteError(f"the weights became non-finite by step {self.state.step} ({problem}) and were not "
                                 f"saved; {self._last_good()}")

    def _last_good(self):
        """Where the newest finite weights are on disk, for NonFiniteError messages."""
        newest = latest_checkpoint(self.run_dir)
        if newest is None:
            return f"no checkpoint was written in {self.run_dir} yet (try a lower learning rate)"
        return f"the newest checkpoint, {newest}, holds finite weights (try a lower learning rate)"

    def _note_bad_files(self, bad_files):
        for path in bad_files:
            if path and path not in self.state.bad_files:
                self.state.bad_files.append(path)
                warn(f"{path}: cannot be decoded; replaced by another image of the same identity")

    def _end_epoch(self):
        state = self.state
        with self._averaged():
            metrics = distributed.broadcast_object(self.stage.evaluate(state.epoch) if self.is_main else None)
        state.epoch += 1
        state.batch = 0
        if metrics:
            self.log.log({f"val/{k}": v for k, v in metrics.items()}, state.step, state.epoch)
            say(f"epoch {state.epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        improved = bool(metrics) and metrics["accuracy"] > state.best
        if improved:
            state.best = metrics["accuracy"]
        self.checkpoint()
        if improved:
            self.checkpoint("best.pt")

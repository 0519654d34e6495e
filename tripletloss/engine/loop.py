"""The training loop shared by both stages: optimisation, checkpoints, exact resume, signals, NaN guard, logging.

A stage supplies a `Job` (see tripletloss/stages/): the net, a batch source, an objective and optional evaluation.
"""
import contextlib
import signal
import sys
import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm import tqdm

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
    """Seconds per step spent waiting for the batch source and computing (forward, backward, update), summed
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


class TrainLoop:
    """Runs `job` for `epochs` epochs in `run_dir`; `resume_from(checkpoint)` first to continue a run."""

    def __init__(self, job, settings, run_dir, epochs, device, is_main=True):
        self.job, self.settings, self.run_dir = job, settings, run_dir
        self.epochs, self.device, self.is_main = epochs, device, is_main
        self.state = TrainState()
        self.log = MetricsLog(run_dir, job.stage, enabled=is_main)
        self.optimizer, self.phase = None, None
        decay, schedule = settings["moving_average_decay"], settings["learning_rate_schedule_file"]
        self.ema = WeightAverage(job.net, decay) if decay > 0 else None
        self.schedule = read_schedule_file(resolve_path(schedule)) if job.base_lr == STOP else None
        self.health = HealthMonitor(settings["margin"], settings["health_intervals"])
        self.times = StepTimes()
        self._say(f"precision: {precision.resolve(settings['precision'], device)} (precision={settings['precision']})")

    def _set_phase(self, epoch):
        self._enter_phase(self.job.phase(epoch))

    def _enter_phase(self, phase):
        """Apply freeze phase `phase` and build its optimizer, unless it is the current one."""
        if phase != self.phase:
            self.phase = phase
            self.job.apply_phase(phase)
            model = distributed.wrap(self.job.net, self.device)  # DDP registers the trainable params
            self.job.model = precision.wrap(model, self.settings["precision"], self.device)
            groups = self.job.net.param_groups(max(self._lr(), 0.0), self.settings["weight_decay"])
            self.optimizer = make_optimizer(groups, self.settings)

    def resume_from(self, ckpt):
        """Restore optimizer, RNG and loop state from checkpoint dict `ckpt` (the model is already loaded)."""
        self.state = TrainState(**ckpt["state"])
        # The phase the optimizer was saved in: an epoch-end checkpoint precedes the next epoch's phase switch.
        self._enter_phase(ckpt.get("phase", self.job.phase(self.state.epoch)))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.ema is not None and "live_model" in ckpt:
            self.ema.load(ckpt["model"])
        self.job.load_training_state(ckpt.get("job_state", {}))
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
                         job_state=self.job.training_state(), config=dict(self.settings)), path)
        if name is None:
            prune_checkpoints(self.run_dir, self.settings["keep_checkpoints"])
        return path

    def _model_record(self):
        """The job's model record; with a moving average its `model` holds the averaged weights (what evaluation
        and fine-tuning use) and `live_model` the trained ones (what a resume continues from)."""
        record = self.job.model_record()
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
        self._say(f"{self.settings['learning_rate_schedule_file']}: learning rate -1 at epoch "
                  f"{self.state.epoch + 1}: training stops")
        return True

    def run(self):
        """Train to the last epoch (or a -1 of the schedule file); write model.pt; return the final TrainState."""
        with _SignalFlag() as flag:
            while self.state.epoch < self.epochs and not self._schedule_stops():
                self._set_phase(self.state.epoch)
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
        st, job = self.state, self.job
        job.source.set_epoch(st.epoch, st.batch)
        bar = tqdm(timed(job.source), total=job.steps_per_epoch, initial=st.batch, disable=not self.is_main,
                   dynamic_ncols=True, desc=f"{job.stage} epoch {st.epoch + 1}/{self.epochs}")
        job.net.train()
        for (inputs, labels, bad), wait in bar:
            self._note_bad_files(bad)
            start = time.perf_counter()
            stats = self._step(inputs, labels)
            self.times.add(wait, time.perf_counter() - start)
            st.batch += 1
            st.step += 1
            bar.set_postfix(loss=f"{stats['loss']:.4f}", lr=f"{stats['lr']:.3g}")
            if st.step % self.settings["log_every_steps"] == 0:
                self._log_train(stats)
            every = self.settings["checkpoint_every_steps"]
            if every and st.step % every == 0:
                self.checkpoint()
            signum = distributed.agreed_signal(flag.signum)  # all ranks stop at the same step
            if signum is not None:
                path = self.checkpoint()
                bar.close()
                launcher = "torchrun <the same options>" if distributed.launched() else "python"
                raise Interrupted(f"stopped by {signal.Signals(signum).name} at epoch {st.epoch + 1}, "
                                  f"step {st.step}; checkpoint {path}; continue with: {launcher} train.py --stage "
                                  f"{job.stage} --resume {self.run_dir}", signum)

    def _log_train(self, stats):
        """Log a step's stats, and a warning (printed once, logged as health/<problem> = 1) when training is sick."""
        st = self.state
        self.log.log({**{f"train/{k}": v for k, v in stats.items()}, **self.times.means()}, st.step, st.epoch)
        for problem, message in self.health.check(stats):
            self._warn(message)
            self.log.log({f"health/{problem}": 1.0}, st.step, st.epoch)

    def _lr(self):
        """The base learning rate (the schedule file's for this epoch when it is -1) scaled by the schedule."""
        base = self.job.base_lr
        if self.schedule is not None:
            base = rate_for_epoch(self.schedule, self.state.epoch + 1)
        return base * lr_factor(self.state.step, self.job.steps_per_epoch, self.epochs, self.settings)

    def _step(self, inputs, labels):
        st = self.state
        lr = self._lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        self._buffers = [b.clone() for b in self.job.net.buffers()]  # BatchNorm statistics, for _skip to restore
        self.optimizer.zero_grad(set_to_none=True)
        loss, stats = self.job.objective(inputs, labels, st.step)
        stats = dict(stats, lr=lr)  # the rate this step used (logged beside its loss)
        finite = distributed.all_finite(loss)  # under DDP every rank joins the backward and skips alike
        if finite or distributed.is_active():
            loss.backward()
        if not finite or not self._grads_finite():
            return self._skip(stats)
        if self.settings["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(self.job.net.parameters(), self.settings["grad_clip"])
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(st.step)
        self.job.after_step()
        st.nonfinite = 0
        return dict(stats, loss=loss.item())

    def _grads_finite(self):
        grads = [p.grad.isfinite().all() for p in self.job.net.parameters() if p.grad is not None]
        return bool(torch.stack(grads).all()) if grads else True  # one device sync, not one per tensor

    def _skip(self, stats):
        st = self.state
        st.nonfinite += 1
        st.skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        for buf, saved in zip(self.job.net.buffers(), self._buffers):  # undo the forward pass's BatchNorm update
            buf.copy_(saved)
        self._warn(f"non-finite loss or gradient at step {st.step + 1}: step skipped ({st.nonfinite} in a row)")
        if st.nonfinite >= self.settings["max_nonfinite_steps"]:
            raise NonFiniteError(f"{st.nonfinite} consecutive steps with a non-finite loss or gradient "
                                 f"(max_nonfinite_steps); stopped at step {st.step + 1}; {self._last_good()}")
        return dict(stats, loss=float("nan"))

    def _check_weights(self):
        """Raise NonFiniteError instead of saving weights that hold NaN/inf (an update overflowed them)."""
        bad = first_nonfinite(self.job.net.layers.state_dict())
        if bad:
            raise NonFiniteError(f"the weights became non-finite by step {self.state.step} ({bad}) and were not "
                                 f"saved; {self._last_good()}")

    def _last_good(self):
        """Where the newest finite weights are on disk, for NonFiniteError messages."""
        newest = latest_checkpoint(self.run_dir)
        if newest is None:
            return f"no checkpoint was written in {self.run_dir} yet (try a lower learning rate)"
        return f"the newest checkpoint, {newest}, holds finite weights (try a lower learning rate)"

    def _say(self, message, file=None):
        """Print a line above the progress bar (to stdout, or `file`), on the main rank only."""
        if self.is_main:
            tqdm.write(message, file=file)

    def _warn(self, message):
        """_say a warning line, on stderr."""
        self._say(f"warning: {message}", sys.stderr)

    def _note_bad_files(self, bad):
        for path in bad:
            if path and path not in self.state.bad_files:
                self.state.bad_files.append(path)
                self._warn(f"{path}: cannot be decoded; replaced by another image of the same identity")

    def _end_epoch(self):
        st = self.state
        with self._averaged():
            metrics = distributed.broadcast_object(self.job.evaluate(st.epoch) if self.is_main else None)
        st.epoch += 1
        st.batch = 0
        if metrics:
            self.log.log({f"val/{k}": v for k, v in metrics.items()}, st.step, st.epoch)
            self._say(f"epoch {st.epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        improved = bool(metrics) and metrics["accuracy"] > st.best
        if improved:
            st.best = metrics["accuracy"]
        self.checkpoint()
        if improved:
            self.checkpoint("best.pt")

"""Learning-rate schedules as a per-step multiplier (linear warm-up, then cosine, step, constant or exponential).

The loop sets each param group's lr to base_lr * lr_mult * lr_factor(step): the schedule's only state is the step.
"""
import math


def _cosine(epoch, step, steps_per_epoch, total_epochs, settings):
    warmup = settings["warmup_epochs"]
    span = max(total_epochs - warmup, 1e-9)
    return 0.5 * (1 + math.cos(math.pi * min((epoch - warmup) / span, 1.0)))


def _step(epoch, step, steps_per_epoch, total_epochs, settings):
    return settings["lr_gamma"] ** int(epoch // settings["lr_step_epochs"])


def _exponential(epoch, step, steps_per_epoch, total_epochs, settings):
    """facenet's tf.train.exponential_decay(..., staircase=True), counted in steps."""
    period = settings["learning_rate_decay_epochs"] * max(steps_per_epoch, 1)
    return settings["learning_rate_decay_factor"] ** (step // period)


def _constant(epoch, step, steps_per_epoch, total_epochs, settings):
    return 1.0


#: The lr_schedule setting's values: each the multiplier after the warm-up, given (epoch, step, steps_per_epoch,
#: total_epochs, settings).
SCHEDULES = {"cosine": _cosine, "step": _step, "constant": _constant, "exponential": _exponential}


def lr_factor(step, steps_per_epoch, total_epochs, settings):
    """Return the multiplier of the base learning rate at optimizer step `step` (0-based)."""
    epoch = step / max(steps_per_epoch, 1)
    warmup = settings["warmup_epochs"]
    if warmup > 0 and epoch < warmup:
        return (epoch + 1 / max(steps_per_epoch, 1)) / warmup
    return SCHEDULES[settings["lr_schedule"]](epoch, step, steps_per_epoch, total_epochs, settings)

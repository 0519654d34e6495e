"""facenet's learning-rate schedule file: `epoch: lr` lines, `#` comments, lr -1 (or `-`) stops training.

    # Learning rate schedule
    0:  0.05
    60: 0.005
    91: -1

Epochs count from 1, as in facenet's train_softmax.py: a line `e: lr` sets the rate from epoch e on (so `0:` and
`1:` both cover the first epoch). After the last line its rate stays. Blank lines are allowed (facenet fails on them).
"""
from tripletloss.errors import ConfigError

STOP = -1.0


def _parse_line(text, where):
    """(epoch, lr) of one non-empty line; ConfigError naming `where` (file:line) if it is not `int: number`."""
    epoch, sep, rate = text.partition(":")
    try:
        if not sep:
            raise ValueError
        rate = STOP if rate.strip() == "-" else float(rate)
        epoch = int(epoch)
    except ValueError:
        raise ConfigError(f"{where}: expected 'epoch: learning_rate', got {text!r}") from None
    if epoch < 0 or not (rate > 0 or rate == STOP):
        raise ConfigError(f"{where}: epoch must be >= 0 and the rate > 0 or -1, got {text!r}")
    return epoch, rate


def read_schedule_file(path):
    """Parse schedule file `path`; return [(epoch, lr), ...] in file order.

    Raises ConfigError (one line naming the file and line) for a missing file, a bad line, epochs that do not
    increase, or a file without any entry.
    """
    try:
        lines = open(path).read().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: learning_rate_schedule_file cannot be read ({exc.strerror})") from None
    schedule = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            entry = _parse_line(text, f"{path}:{number}")
            if schedule and entry[0] <= schedule[-1][0]:
                raise ConfigError(f"{path}:{number}: epoch {entry[0]} does not follow epoch {schedule[-1][0]}")
            schedule.append(entry)
    if not schedule:
        raise ConfigError(f"{path}: learning_rate_schedule_file has no 'epoch: learning_rate' line")
    return schedule


def rate_for_epoch(schedule, epoch):
    """The rate of 1-based `epoch` in `schedule` (from read_schedule_file): the last entry with e <= epoch.

    Before the first entry the first entry's rate applies. STOP (-1) means: stop training before this epoch.
    """
    rate = schedule[0][1]
    for start, value in schedule:
        if start <= epoch:
            rate = value
    return rate

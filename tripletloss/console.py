"""Notes and warnings for the person running a command: printed once per run (by the main process when torchrun
starts several) and above any tqdm progress bar, so bars are not torn. Errors are not printed here: every process
reports its own (entry points print them to stderr)."""
import os
import sys

import torch.distributed as dist
from tqdm import tqdm


def is_main():
    """True in the process that reports and writes the run's files: rank 0 under torchrun (read from the RANK
    variable until the process group is up), the only process otherwise."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


def say(message, file=None):
    """Print the line `message` above the progress bars, to stdout (or `file`), in the main process only."""
    if is_main():
        tqdm.write(message, file=file)


def warn(message):
    """say 'warning: `message`' on stderr."""
    say(f"warning: {message}", sys.stderr)

"""argparse types for the subcommands' numeric options: out-of-range values are refused by argparse itself,
with one line naming the option (exit 2)."""
import argparse


def int_in(lo, hi=None):
    """Return an argparse type parsing an int in lo..hi (hi None: no upper bound)."""
    def parse(text):
        """The int of `text`; ArgumentTypeError when it is not one or is out of range."""
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < lo or (hi is not None and value > hi):
            wanted = f">= {lo}" if hi is None else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
        return value
    return parse


#: A count of at least one.
positive_int = int_in(1)
#: A count that may be zero.
nonneg_int = int_in(0)

"""Exceptions for problems in the user's input; entry points print them as one line, without a traceback."""


class UserError(Exception):
    """A problem with the user's input (a file, a setting, a dataset), described in one line naming it."""


class ConfigError(UserError):
    """A config.py value or --set override that is unknown, of the wrong type or out of range."""


class NetSpecError(UserError):
    """A YAML layer list that cannot be built: unknown type, missing field, shape mismatch."""


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded into the network at hand (missing, corrupt, other architecture)."""

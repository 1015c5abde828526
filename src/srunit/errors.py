"""Exceptions raised for bad user input. Each message names the thing, the value and the fix."""


class SrunitError(Exception):
    """Base class for errors caused by user input (config, data, checkpoints)."""


class ConfigError(SrunitError, ValueError):
    """An unknown key or an invalid value in a config file or a command-line override."""


class DataError(SrunitError):
    """A missing or empty image folder, or an unreadable image file."""


class CheckpointError(SrunitError):
    """A checkpoint that is missing, incomplete or of an unknown layout."""


class TrainingDiverged(SrunitError):
    """A loss became inf or nan; nothing after the last finite checkpoint was saved."""

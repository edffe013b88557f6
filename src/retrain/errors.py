"""Exceptions a user can act on: each message is one line naming the file and column."""


class RetrainError(Exception):
    """Base class of the errors the CLI and stages report without a traceback."""


class DataError(RetrainError):
    """A table cannot be read or does not have the declared shape."""


class ValidationFailed(RetrainError):
    """A blocking expectation failed; the message names the file, column and expectation."""


class ConfigMismatch(RetrainError):
    """params.yaml (or a suite) disagrees with the data; the message names file, key, column."""

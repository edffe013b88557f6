"""The one error `retrain init` raises."""

from __future__ import annotations

from retrain.errors import RetrainError


class InitError(RetrainError):
    """The table or the options cannot make a project (one line, names the column)."""

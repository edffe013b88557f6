"""Faults injected into a real fit on purpose, for the tests of what survives them.

Its own small module: a bag member's spawned process (train.workers) unpickles its callbacks
by importing the module that defines them, and a test module imports far more than this.
"""

from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback


class DiesAtFirstEpoch(Callback):
    """Ends its fit at the first epoch's end: an exception, or (`kill`) its process killed by
    SIGKILL, as the kernel's OOM killer would; never the process that built it (the test's)."""

    def __init__(self, kill: bool) -> None:
        self.kill, self.parent = kill, os.getpid()

    def on_train_epoch_end(self, trainer: object, pl_module: object) -> None:
        if self.kill and os.getpid() != self.parent:
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("the loss diverged")

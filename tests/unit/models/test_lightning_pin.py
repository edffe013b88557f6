"""BinaryClassifier.training_step steps the optimiser itself and advances Lightning's step
counter through a private attribute (`fit_loop.epoch_loop.manual_optimization
.optim_step_progress`), so that `trainer.global_step` and `max_steps` count optimiser steps.

Lightning has no public API for it. The dependency is pinned to one minor release, and this
test fails when the pin is widened or the installed Lightning moves out of it, so an upgrade
comes with a look at that attribute; tests/unit/models/test_module.py proves the count itself.
"""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PRIVATE = ("fit_loop", "epoch_loop", "manual_optimization", "optim_step_progress")


def _lightning() -> Requirement:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (found,) = [Requirement(d) for d in deps if re.match(r"lightning\b(?![-_])", d)]
    return found


def test_lightning_is_pinned_to_one_minor_release_and_installed_within_it():
    spec = _lightning().specifier
    installed = Version(version("lightning"))
    assert installed in spec, f"lightning {installed} is outside pyproject's {spec}"
    lows = [Version(s.version) for s in spec if s.operator == ">="]
    highs = [Version(s.version) for s in spec if s.operator == "<"]
    assert lows and highs, f"lightning must be bounded on both sides, not {spec}"
    low, high = max(lows), min(highs)
    assert (high.major, high.minor) == (low.major, low.minor + 1), (
        f"lightning {spec} spans more than one minor release: check "
        f"{'.'.join(PRIVATE)} (retrain.models.module) on the new ones, then widen"
    )


def test_the_private_counter_is_where_training_step_expects_it():
    from lightning.pytorch import Trainer

    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    node = trainer
    for name in PRIVATE:
        node = getattr(node, name)
    # What training_step calls; with a manual-optimisation module attached, global_step
    # reads this counter (tests/unit/models/test_module.py checks that end to end).
    node.increment_by(3)
    assert node.total.completed == 3

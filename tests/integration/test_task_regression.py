"""ISLR Wage, a regression target (`wage`) end to end, configured by `retrain init` alone
(issue 26): the tests of tests/integration/task_e2e.py on this table. `make test-tasks`
(CI runs it)."""

from __future__ import annotations

import pytest

from tests.integration.task_e2e import (  # noqa: F401  (the tests, collected here)
    Case,
    build_case,
    test_check_pr_passes_a_generated_batch_and_blocks_a_broken_target,
    test_flows_retrain_monitor_retrain_again_and_predict,
    test_init_chooses_the_task_and_dvc_repro_trains_it,
    test_serve_answers_the_task,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.tasks]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return build_case("wage", tmp_path_factory)

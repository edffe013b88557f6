"""One batch's two drift checks (the monitor's, the retrain's) side by side, with why."""

from __future__ import annotations

import re

import pandas as pd

from retrain.monitoring.agreement import after_summary, batch_rows_in, comparison


def _summary(drifted: list[str], reference_rows: int, tripped: bool) -> dict:
    features = {f"c{i}": {} for i in range(19)}
    return {
        "batch": "mix-0001-0123456789ab.csv",
        "model": "churn-model@v1.0.0",
        "features": features,
        "drifted_features": drifted,
        "reference_rows": reference_rows,
        "gate": {"tripped": tripped, "reasons": []},
    }


def test_the_two_numbers_of_one_batch_side_by_side_with_why():
    # Issue 28: the monitor said 7 of 19 columns, the retrain's drift page 4 of 19.
    monitor = _summary([f"c{i}" for i in range(7)], 4507, True)
    stage = _summary([f"c{i}" for i in range(4)], 4699, True)
    block = comparison(monitor, stage, held=200, batch_rows=300)
    text = " ".join(re.sub(r"<[^>]+>", " ", block).split())
    assert "mix-0001-0123456789ab.csv, as the monitor saw it and here" in text
    assert "7 of 19: c0, c1, c2, c3, c4, c5, c6" in text and "4 of 19: c0, c1, c2, c3" in text
    assert "4507 rows, none from this batch" in text
    assert "4699 rows, 200 of them from this batch (300 rows)" in text
    assert "different references" in text and "200 of its 300 rows" in text
    assert "Both checks agree" in comparison(monitor, monitor, held=0, batch_rows=300)


def test_the_block_follows_the_pages_verdict():
    page = '<html><body><section id="drift-summary"><h1>x</h1></section><div>ev</div></body>'
    out = after_summary(page, "<p>B</p>")
    assert out.index("</section>") < out.index("<p>B</p>") < out.index("<div>ev</div>")
    assert after_summary("<html><body><div/></body>", "<p>B</p>").startswith("<html><body><p>B")


def test_the_batchs_rows_in_the_reference_are_counted_by_id():
    reference = pd.DataFrame({"id": ["a", "b", "c", "d"]})
    assert batch_rows_in(reference, pd.DataFrame({"id": ["b", "d", "z"]}), "id") == 2
    assert batch_rows_in(reference, pd.DataFrame({"id": ["b"]}), None) == 0

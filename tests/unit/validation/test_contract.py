"""The data contract's rules on small hand-made tables: what breaks it and what it says."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrain.config import DatasetSchema
from retrain.errors import DataError
from retrain.validation.contract import (
    Reference,
    check_files_agree,
    contract_problem,
    kind_of,
)

SCHEMA = DatasetSchema(
    name="t",
    suite=Path("t.json"),
    target="y",
    positive_class="Yes",
    id_column="id",
    numeric=["amount"],
    categorical=["plan"],
)


def _table(n: int = 4, start: int = 0, **changes: list[object]) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "id": list(range(start, start + n)),
            "amount": [1.5 * i for i in range(n)],
            "plan": ["a", "b"] * (n // 2),
            "y": ["Yes", "No"] * (n // 2),
        }
    )
    for col, values in changes.items():
        df[col] = values
    return df


PINNED = Reference.of([_table()], "id")


@pytest.mark.parametrize(
    ("values", "kind"),
    [([1, 2], "integer"), ([1.5, None], "decimal"), ([True, False], "boolean"), (["a"], "text")],
)
def test_kind_of(values, kind):
    assert kind_of(pd.Series(values)) == kind
    assert kind_of(pd.Series([None, None], dtype=object)) is None  # empty: no kind


def test_a_good_batch_passes_and_numeric_columns_need_only_be_numbers():
    assert contract_problem(_table(start=10), "b.csv", SCHEMA, PINNED) is None
    whole = _table(start=10, amount=[1, 2, 3, 4])  # integers where decimals are pinned
    assert contract_problem(whole, "b.csv", SCHEMA, PINNED) is None


@pytest.mark.parametrize(
    ("batch", "said"),
    [
        (
            _table(start=10, id=["a@x", "b@x", "c@x", "d@x"]),
            "b.csv: column 'id' holds text (e.g. data row 1) where the pinned data holds integers",
        ),
        (
            _table(start=10, plan=[1, 2, 1, 2]),
            "b.csv: column 'plan' holds integers where the pinned data holds text",
        ),
        (
            _table(start=10, id=[10, 11, 11, 12]),
            "b.csv: column 'id' repeats 1 id(s) within the batch: 11",
        ),
        (
            _table(start=2),
            "b.csv: column 'id': 2 id(s) already in the pinned data (2, 3): a batch brings new "
            "rows; an update of pinned rows is refused",
        ),
        (
            _table(start=10, id=[10, None, 12, 13]),
            "b.csv: column 'id' is empty on data row 2: every row needs an id",
        ),
        (
            _table(start=10, plan=["a", "b\x00c", "a", "b"]),
            "b.csv: column 'plan' on data row 2 holds a control character (0x00)",
        ),
        (
            _table(start=10).drop(columns=["plan"]),
            "b.csv: columns differ from the pinned data (extra [], missing ['plan'])",
        ),
        (
            _table(start=10)[["y", "id", "amount", "plan"]],
            "b.csv: columns are not in the pinned order (column 1 is 'y', pinned 'id')",
        ),
    ],
)
def test_what_breaks_the_contract_is_said_in_one_line(batch, said):
    problem = contract_problem(batch, "b.csv", SCHEMA, PINNED)
    assert problem is not None and problem.startswith(said), problem
    assert "\n" not in problem


def test_many_colliding_ids_are_counted_and_a_few_shown():
    pinned = Reference.of([_table(n=20)], "id")
    problem = contract_problem(_table(n=20), "b.csv", SCHEMA, pinned)
    assert "20 id(s) already in the pinned data (0, 1, 2, 3, 4 ... 20 in all)" in str(problem)


def test_an_accepted_table_is_taken_into_the_reference():
    ref = Reference.of([_table()], "id")
    ref.add(_table(start=10), "id")
    assert contract_problem(_table(start=12), "c.csv", SCHEMA, ref) is not None
    empty = Reference.of([], "id")  # nothing pinned yet: the first table sets the order
    assert empty.columns == []
    empty.add(_table(), "id")
    assert empty.columns == ["id", "amount", "plan", "y"] and empty.ids == {0, 1, 2, 3}


def test_prepare_names_the_file_of_another_kind_than_most_rows():
    frames = [
        (Path("batches/b.csv"), _table(start=100, id=["x", "y", "z", "w"])),
        (Path("main.csv"), _table(n=40)),
    ]
    with pytest.raises(DataError, match=r"^batches/b.csv: column 'id' holds text"):
        check_files_agree(frames, SCHEMA)
    check_files_agree([(Path("main.csv"), _table(n=40))], SCHEMA)


def test_a_columns_kind_is_the_one_most_pinned_rows_hold():
    # An old batch of text ids first (batches/ sorts before the main table): still integers.
    ref = Reference.of([_table(start=100, id=["x", "y", "z", "w"]), _table(n=40)], "id")
    assert ref.kinds["id"] == "integer"
    problem = contract_problem(_table(start=200, id=["a", "b", "c", "d"]), "b.csv", SCHEMA, ref)
    assert str(problem).startswith("b.csv: column 'id' holds text")

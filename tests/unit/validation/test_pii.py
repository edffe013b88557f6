"""The PII guard on small hand-made tables: what it flags, what it leaves alone, what it says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.validation.pii import find_pii

N = 300
rng = np.random.default_rng(0)
FIRST = ["Anna", "Ben", "Carla", "Dario", "Emma", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
LAST = ["Meyer", "Okafor", "Rossi", "Schmidt", "Tanaka", "Novak", "Silva", "Berg", "Kaya", "Wong"]


def _table(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)


PERSONAL = {
    "e-mail address": [f"user{i}@example.com" for i in range(N)],
    "phone number": [f"+41 79 {i:03d} {i % 97:02d} {i % 89:02d}" for i in range(N)],
    "person name": [f"{FIRST[i % 10]} {LAST[(i // 10) % 10]}" for i in range(N)],
    "free-text id": [f"{i:04d}-{chr(65 + i % 26)}{chr(65 + (i * 7) % 26)}QX" for i in range(N)],
}


@pytest.mark.parametrize("kind", sorted(PERSONAL))
def test_values_give_personal_data_away_whatever_the_column_is_called(kind):
    df = _table(contact=PERSONAL[kind], plan=["basic", "pro"] * (N // 2))
    (finding,) = find_pii(df, ["contact", "plan"])
    assert finding.column == "contact"
    assert finding.kind == kind
    assert "sampled" in finding.evidence


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("email", "e-mail address"),
        ("E-Mail Address", "e-mail address"),
        ("first_name", "person name"),
        ("Surname", "person name"),
        ("customer_name", "person name"),
        ("phone", "phone number"),
        ("mobile_number", "phone number"),
        ("contact_phone_no", "phone number"),
        ("account_id", "free-text id"),
    ],
)
def test_column_names_that_say_personal_data(column, kind):
    # Numeric values: only the name can give it away, and it does.
    df = _table(**{column: list(range(N))})
    (finding,) = find_pii(df, [column])
    assert (finding.kind, finding.evidence) == (kind, "column name")


def test_ordinary_features_pass():
    df = _table(
        phone_service=rng.integers(0, 2, N).tolist(),
        plan_name=rng.choice(["Basic plan", "Family Plus", "Pro"], N).tolist(),
        contract=rng.choice(["Month-to-month", "One year", "Two year"], N).tolist(),
        payment_method=rng.choice(["Electronic check", "Credit card (automatic)"], N).tolist(),
        city=rng.choice(["New York", "San Francisco", "Los Angeles"], N).tolist(),
        monthly_charges=rng.uniform(18, 120, N).round(2).tolist(),
        # Amounts read as text (a CSV with blanks): distinct, but not ids or phone numbers.
        total_charges_text=[f"{v:.2f}" for v in rng.uniform(100_000, 900_000, N)],
        video_ids_watched=rng.integers(0, 5, N).tolist(),
        tenure=rng.integers(0, 72, N).tolist(),
    )
    assert find_pii(df, list(df.columns)) == []


def test_allowed_undeclared_and_empty_columns_are_not_flagged():
    df = _table(
        email=PERSONAL["e-mail address"],
        contact=PERSONAL["phone number"],
        note=[None] * N,
    )
    assert find_pii(df, ["email", "note", "missing_column"], allow=["email"]) == []
    # `contact` holds phone numbers but is not a feature: ids and targets are not checked.
    assert find_pii(df, ["note"]) == []


def test_message_names_file_and_column_says_what_to_do_and_hides_the_values():
    df = _table(contact=PERSONAL["e-mail address"])
    (finding,) = find_pii(df, ["contact"])
    message = finding.message("data/raw/batch.csv")
    assert message.startswith("data/raw/batch.csv: column 'contact' looks like personal data")
    assert "e-mail address" in message and "dataset.pii_allow" in message
    assert "@" not in message and "\n" not in message

"""New, time-ordered batches of the configured table, with optional, generic drift.

Rows are generated, never copied: a copy of a table row carries its label into the next
training set, and scored on a test split that holds the original it leaks (issue 12.5: copies
with fresh ids raised test ROC AUC from 0.84 to 0.96). Each new row starts from a seeded draw
of a table row (so categorical combinations stay consistent), every numeric feature that is
more than a 0/1 flag is jittered by a few percent of its spread (rounded as the column is
written, kept inside its range), and the label is drawn afresh from P(label | row) of a
logistic regression fitted on the table: the signal is the table's, as noisy, and no row's
own label is memorisable. A generated row whose features equal a table row's is jittered
again until it is new.

The label model follows the task (`dataset.task`): a logistic regression for binary, a
multinomial one for multiclass (each new row's class drawn from its probabilities), a ridge
regression for regression (each new value its prediction plus a residual of the table drawn
at random, rounded as the column is written and kept inside the table's range).

Drift kinds are generic, on a column named by flag or picked (seeded) from the schema:
`shift` (a numeric column times 1 + k/100), `mix` (a categorical's mix: one level takes a
share of rows), `unseen` (a share of rows get a category never seen), for every task; and the
target's kinds, each for the task it makes sense for (TARGET_KINDS): `flip` (binary: a share of
negative labels become positive), `relabel` (multiclass: a share of rows get another class,
the concept drifts), `prior` (multiclass: one class takes a share of the rows, the rows of
each class as before: a prior shift), `target_shift` (regression: every value plus k standard
deviations of the table's target) and `target_scale` (regression: every value's distance
from the table's mean times k).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import DatasetSchema
from retrain.errors import DataError
from retrain.validation.precheck import row_violations

ID_OFFSET = 1_000_000
KINDS = ("shift", "mix", "unseen", "flip", "relabel", "prior", "target_shift", "target_scale")
# The kinds that change the target, and the task each is for.
TARGET_KINDS = {
    "flip": "binary",
    "relabel": "multiclass",
    "prior": "multiclass",
    "target_shift": "regression",
    "target_scale": "regression",
}
# Defaults of `amount` per kind: percent for shift, standard deviations for target_shift, a
# factor for target_scale, a share of rows for the others.
DEFAULT_AMOUNT = {
    "shift": 25.0,
    "mix": 0.9,
    "unseen": 0.3,
    "flip": 1 / 3,
    "relabel": 0.3,
    "prior": 0.5,
    "target_shift": 0.5,
    "target_scale": 1.5,
}
# prior: batches drawn to find enough rows of the class that takes over (a rare class of 5%
# taking half the rows needs about 10).
MAX_PRIOR_ROUNDS = 100
JITTER = 0.05  # of a column's standard deviation
LABEL_MODEL_ROWS = 20_000
MAX_REDRAWS = 50  # of the rows that break a row-level expectation of the suite


@dataclass(frozen=True)
class Drift:
    """A named change of every batch: kind, the column (None: seeded pick), how much."""

    kind: str
    column: str | None = None
    amount: float | None = None
    # mix: the level that takes over; unseen: the new category; prior: the class that takes over
    value: str | None = None
    # target_shift, target_scale: the table's target's mean and standard deviation
    reference: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown drift kind {self.kind!r}; known: {list(KINDS)}")


def _feature_key(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """One hash per row of its feature values (NaN equal to NaN), for duplicate checks."""
    return pd.util.hash_pandas_object(
        frame[features].astype(str), index=False
    ).to_numpy()  # astype(str): 1 and 1.0 differ in a CSV only by how they are written


class _Generator:
    def __init__(
        self,
        table: pd.DataFrame,
        schema: DatasetSchema,
        rng: np.random.Generator,
        expectations: list[dict[str, Any]] | None = None,
    ):
        self.table = table.reset_index(drop=True)
        self.schema = schema
        self.rng = rng
        self.expectations = expectations or []
        self.known = set(_feature_key(self.table, schema.features).tolist())
        self.jittered = []
        for col in schema.numeric:
            values = pd.to_numeric(self.table[col], errors="coerce").dropna()
            if values.nunique() <= 2:
                continue  # a flag: jitter would make values the table never holds
            integer = bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
            decimals = 0 if integer else _decimals(values)
            # No floor: a column of a few integer levels (a rating, a count) mostly keeps its
            # value, so its distribution does not move; forced steps undo the rare copy.
            spread = float(values.std()) * JITTER
            self.jittered.append(
                (col, spread, decimals, float(values.min()), float(values.max()), integer)
            )
        self._label_model: Any = None

    def rows(self, n: int, weights: np.ndarray | None = None) -> pd.DataFrame:
        """`n` new rows, each satisfying the suite's row-level expectations.

        A jittered row can break a rule its source row kept (a tenure of 0 jittered to 2
        beside a blank total_charges breaks "total_charges not null where tenure > 0"), so
        rows that break one are drawn again, from fresh source rows: rejection sampling,
        which keeps the accepted rows' joint distribution the table's restricted to the rules.
        """
        p = None if weights is None else weights / weights.sum()
        out = self._draw(n, p)
        for _ in range(MAX_REDRAWS):
            bad = row_violations(out, self.expectations)
            if not bad.any():
                return out
            again = self._draw(int(bad.sum()), p)
            again.index = out.index[bad]
            out.loc[bad] = again
        raise DataError(
            f"cannot generate rows that pass the suite: {int(bad.sum())} of {n} still break a "
            f"row-level expectation after {MAX_REDRAWS} redraws (does the table itself pass it?)"
        )

    def _draw(self, n: int, p: np.ndarray | None) -> pd.DataFrame:
        picked = self.rng.choice(len(self.table), size=n, replace=True, p=p)
        out = self.table.iloc[picked].reset_index(drop=True).copy()
        self._jitter(out, np.ones(n, dtype=bool))
        known = np.fromiter(self.known, dtype=np.uint64, count=len(self.known))
        for attempt in range(50):
            dup = np.isin(_feature_key(out, self.schema.features), known)
            if not dup.any():
                break
            if attempt % 10 == 9:
                # A source row whose neighbours are all in the table (few numeric columns of
                # few values, e.g. a year and an age): start those rows from other ones.
                again = self.rng.choice(len(self.table), size=int(dup.sum()), replace=True, p=p)
                fresh = self.table.iloc[again].copy()
                fresh.index = out.index[dup]
                out.loc[dup] = fresh
            self._jitter(out, dup, force=True)
        if dup.any():
            raise DataError(
                f"cannot generate rows unlike the table's: {int(dup.sum())} of {n} stay copies "
                "(no numeric feature to vary beyond 0/1 flags)"
            )
        out[self.schema.target] = self._labels(out)
        return out

    def _jitter(self, out: pd.DataFrame, mask: np.ndarray, force: bool = False) -> None:
        if not self.jittered:
            return
        n = int(mask.sum())
        for col, spread, decimals, low, high, integer in self.jittered:
            values = pd.to_numeric(out.loc[mask, col], errors="coerce").to_numpy(dtype=float)
            noise = self.rng.normal(0.0, spread, n)
            if force:  # at least one step, so a copy surely moves
                step = 1.0 if integer else 10.0**-decimals
                noise = np.where(np.abs(noise) < step, np.sign(noise + 1e-12) * step, noise)
            new = np.clip(np.round(values + noise, decimals), low, high)
            if force:  # pinned at an end of the range: move the other way
                back = np.clip(np.round(values - noise, decimals), low, high)
                new = np.where(new == values, back, new)
            new = np.where(np.isnan(values), np.nan, new)  # a gap stays a gap
            if integer and not np.isnan(new).any():
                out.loc[mask, col] = new.astype(np.int64)
            else:
                out.loc[mask, col] = new

    def _labels(self, rows: pd.DataFrame) -> np.ndarray:
        if self.schema.task == "multiclass":
            return self._classes(rows)
        if self.schema.task == "regression":
            return self._values(rows)
        from sklearn.linear_model import LogisticRegression

        schema = self.schema
        target = self.table[schema.target]
        positive = target.astype(str) == str(schema.positive_class)
        negative_value = target[~positive].iloc[0]
        positive_value = target[positive].iloc[0]
        if self._label_model is None:
            sample, x = self._fit_sample()
            y = (sample[schema.target].astype(str) == str(schema.positive_class)).to_numpy()
            self._label_model = LogisticRegression(max_iter=2000).fit(x / self._scale, y)
        x = self._design(rows).reindex(columns=self._columns, fill_value=0.0)
        p = self._label_model.predict_proba(x / self._scale)[:, 1]
        return np.where(self.rng.random(len(rows)) < p, positive_value, negative_value)

    def _fit_sample(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The rows the label model is fitted on and their design (its columns and scale
        kept for the new rows)."""
        sample = self.table
        if len(sample) > LABEL_MODEL_ROWS:
            sample = sample.sample(LABEL_MODEL_ROWS, random_state=0)
        x = self._design(sample)
        self._columns = list(x.columns)
        self._scale = x.abs().max().replace(0, 1.0)
        return sample, x

    def _classes(self, rows: pd.DataFrame) -> np.ndarray:
        """Multiclass: each row's class drawn from a multinomial logistic regression's
        probabilities, written as the table writes it."""
        from sklearn.linear_model import LogisticRegression

        text = self.table[self.schema.target].astype(str)
        if self._label_model is None:
            sample, x = self._fit_sample()
            y = sample[self.schema.target].astype(str).to_numpy()
            self._label_model = LogisticRegression(max_iter=2000).fit(x / self._scale, y)
        x = self._design(rows).reindex(columns=self._columns, fill_value=0.0)
        p = self._label_model.predict_proba(x / self._scale)
        u = self.rng.random(len(rows))[:, None]
        drawn = np.minimum((u > p.cumsum(axis=1)).sum(axis=1), p.shape[1] - 1)
        written = [self.table[self.schema.target][text == c].iloc[0] for c in
                   self._label_model.classes_]  # fmt: skip
        return np.array(written, dtype=object)[drawn]

    def _values(self, rows: pd.DataFrame) -> np.ndarray:
        """Regression: a ridge regression's prediction plus one of its residuals on the
        table drawn at random, rounded as the target is written, inside the table's range."""
        from sklearn.linear_model import Ridge

        values = pd.to_numeric(self.table[self.schema.target])
        if self._label_model is None:
            sample, x = self._fit_sample()
            y = pd.to_numeric(sample[self.schema.target]).to_numpy(dtype=float)
            self._label_model = Ridge(alpha=1.0).fit(x / self._scale, y)
            self._residuals = y - self._label_model.predict(x / self._scale)
        x = self._design(rows).reindex(columns=self._columns, fill_value=0.0)
        drawn = self._label_model.predict(x / self._scale) + self.rng.choice(
            self._residuals, len(rows)
        )
        # Clipped after rounding: a rounded end of the range may lie just outside it.
        return np.clip(_as_written(drawn, values), values.min(), values.max())

    def _design(self, frame: pd.DataFrame) -> pd.DataFrame:
        num = frame[self.schema.numeric].apply(pd.to_numeric, errors="coerce")
        num = num.fillna(
            self.table[self.schema.numeric].apply(pd.to_numeric, errors="coerce").median()
        )
        cat = pd.get_dummies(frame[self.schema.categorical].astype(str), dtype=float)
        return pd.concat([num.astype(float), cat], axis=1).fillna(0.0)


def _as_written(new: np.ndarray, column: pd.Series) -> np.ndarray:
    """Numbers rounded as `column` writes them: integers stay integers."""
    if pd.api.types.is_integer_dtype(column):
        return np.round(new).astype(np.int64)
    return np.round(new, _decimals(column.dropna()))


def _decimals(values: pd.Series) -> int:
    for d in range(7):
        if np.allclose(values.to_numpy(dtype=float), values.round(d)):
            return d
    return 6


def _pick(drift: Drift, choices: list[str], what: str, rng: np.random.Generator) -> str:
    if drift.column is not None:
        if drift.column not in choices:
            raise ValueError(
                f"drift {drift.kind}: column {drift.column!r} is not a {what} feature "
                f"(known: {choices})"
            )
        return drift.column
    if not choices:
        raise ValueError(f"drift {drift.kind}: the schema has no {what} feature to change")
    return choices[int(rng.integers(len(choices)))]


def resolve(drift: Drift, table: pd.DataFrame, schema: DatasetSchema, seed: int) -> Drift:
    """The drift with its column (and value) chosen: seeded, from the schema."""
    rng = np.random.default_rng([seed, 7])
    amount = DEFAULT_AMOUNT[drift.kind] if drift.amount is None else drift.amount
    if drift.kind == "shift":
        varied = [c for c in schema.numeric if table[c].nunique() > 2]
        return Drift("shift", _pick(drift, varied, "numeric", rng), amount)
    if drift.kind in ("mix", "unseen"):
        categorical = list(schema.categorical)
        if drift.kind == "unseen" and drift.column is None:
            # A seeded pick: a one-hot column, whose new level validation stops; a
            # high-cardinality one scores a new level with the prior (issue 27).
            one_hot = [c for c in categorical if c not in schema.high_cardinality]
            categorical = one_hot or categorical
        col = _pick(drift, categorical, "categorical", rng)
        if drift.kind == "unseen":
            return Drift("unseen", col, amount, drift.value or f"new {col}")
        levels = table[col].value_counts()
        value = drift.value if drift.value is not None else str(levels.index[-1])
        if value not in set(table[col].astype(str)):
            raise ValueError(f"drift mix: {value!r} is not a level of column {col!r}")
        return Drift("mix", col, amount, value)
    task = TARGET_KINDS[drift.kind]
    if schema.task != task:
        fits = [k for k, t in TARGET_KINDS.items() if t == schema.task]
        raise ValueError(
            f"drift {drift.kind} is for a {task} target; {schema.target!r} is {schema.task}: "
            f"use {' or '.join(fits)} (or shift, mix, unseen on a feature)"
        )
    if drift.kind == "prior":
        return Drift("prior", schema.target, amount, _prior_class(drift, table, schema))
    if task == "regression":
        values = pd.to_numeric(table[schema.target])
        reference = (float(values.mean()), float(values.std()))
        return Drift(drift.kind, schema.target, amount, reference=reference)
    return Drift(drift.kind, schema.target, amount)


def _prior_class(drift: Drift, table: pd.DataFrame, schema: DatasetSchema) -> str:
    """The class that takes over: the one given, else the table's rarest."""
    classes = [str(c) for c in schema.classes or ()]
    if drift.value is None:
        counts = table[schema.target].astype(str).value_counts()
        return min(classes, key=lambda c: (counts.get(c, 0), c))
    if drift.value not in classes:
        raise ValueError(f"drift prior: {drift.value!r} is not one of dataset.classes {classes}")
    return drift.value


def simulate(
    table: pd.DataFrame,
    schema: DatasetSchema,
    *,
    n_batches: int,
    batch_size: int,
    seed: int,
    drift: Drift | str | None = None,
    first_batch: int = 1,
    suite: dict[str, Any] | None = None,
) -> list[pd.DataFrame]:
    """`n_batches` generated batches of `batch_size` rows; `drift` applies to each.

    Ids (when the schema has an id column) are fresh per batch number, so batches of separate
    calls never share ids as long as their numbers differ. Before drift, every row satisfies
    the row-level expectations of `suite` (default: the suite file `schema.suite` names, when
    it exists; a drift may break them on purpose).
    """
    if isinstance(drift, str):
        drift = Drift(drift)
    chosen = resolve(drift, table, schema, seed) if drift is not None else None
    rng = np.random.default_rng(seed)
    if suite is None and Path(schema.suite).is_file():
        from retrain.validation.suite import load_suite_json

        suite = load_suite_json(Path(schema.suite))
    gen = _Generator(table, schema, rng, (suite or {}).get("expectations"))
    weights = None
    if chosen is not None and chosen.kind == "mix":
        assert chosen.column is not None and chosen.amount is not None
        hit = (table[chosen.column].astype(str) == chosen.value).to_numpy()
        weights = np.where(hit, chosen.amount / hit.sum(), (1 - chosen.amount) / (~hit).sum())
    batches = []
    for i in range(n_batches):
        if chosen is not None and chosen.kind == "prior":
            batch = _with_prior(gen, batch_size, chosen)
        else:
            batch = gen.rows(batch_size, weights)
        if chosen is not None:
            batch = _apply(batch, chosen, schema, rng)
        number = first_batch + i
        if schema.id_column:
            batch[schema.id_column] = ID_OFFSET * number + np.arange(len(batch))
        batches.append(batch[list(table.columns)])
    return batches


def _with_prior(gen: _Generator, n: int, drift: Drift) -> pd.DataFrame:
    """`n` generated rows of which a share `drift.amount` are of class `drift.value`: rows are
    generated as usual and kept by their drawn class, so each class's rows are as before and
    only the classes' shares move."""
    assert drift.column is not None and drift.amount is not None
    want = int(round(drift.amount * n))
    hits: list[pd.DataFrame] = []
    rest: list[pd.DataFrame] = []
    for _ in range(MAX_PRIOR_ROUNDS):
        rows = gen.rows(n)
        hit = (rows[drift.column].astype(str) == drift.value).to_numpy()
        hits.append(rows[hit])
        rest.append(rows[~hit])
        if sum(map(len, hits)) >= want and sum(map(len, rest)) >= n - want:
            out = pd.concat([pd.concat(hits).iloc[:want], pd.concat(rest).iloc[: n - want]])
            return out.iloc[gen.rng.permutation(n)].reset_index(drop=True)
    raise DataError(
        f"drift prior: class {drift.value!r} of column {drift.column!r} is too rare to fill "
        f"{want} of {n} rows in {MAX_PRIOR_ROUNDS} rounds; lower the amount"
    )


def _apply(
    batch: pd.DataFrame, drift: Drift, schema: DatasetSchema, rng: np.random.Generator
) -> pd.DataFrame:
    if drift.kind in ("relabel", "target_shift", "target_scale"):
        return _drift_target(batch, drift, schema, rng)
    out = batch.copy()
    col, amount = drift.column, float(drift.amount or 0)
    assert col is not None
    if drift.kind == "shift":
        values = pd.to_numeric(out[col], errors="coerce") * (1 + amount / 100)
        integer = pd.api.types.is_integer_dtype(batch[col])
        out[col] = values.round(0).astype("Int64") if integer else values.round(6)
        if integer and not out[col].isna().any():
            out[col] = out[col].astype(np.int64)
    elif drift.kind == "unseen":
        chosen = rng.random(len(out)) < amount
        out[col] = out[col].astype(object)
        out.loc[chosen, col] = drift.value
    elif drift.kind == "flip":
        target = out[col]
        positive = target.astype(str) == str(schema.positive_class)
        pos_value = target[positive].iloc[0] if positive.any() else schema.positive_class
        negatives = out.index[~positive]
        flip = rng.choice(negatives, size=int(len(negatives) * amount), replace=False)
        out.loc[flip, col] = pos_value
    return out


def _drift_target(
    batch: pd.DataFrame, drift: Drift, schema: DatasetSchema, rng: np.random.Generator
) -> pd.DataFrame:
    """relabel: a share of rows get another class (drawn evenly among the others);
    target_shift / target_scale: every value moved / spread by the table's target's mean and
    standard deviation (`drift.reference`), written as the column is."""
    out = batch.copy()
    col, amount = schema.target, float(drift.amount or 0)
    if drift.kind == "relabel":
        classes = list(schema.classes or ())  # as params.yaml pins them: as written
        index = out[col].astype(str).map({str(c): i for i, c in enumerate(classes)})
        index = index.to_numpy(dtype=np.int64)
        chosen = rng.random(len(out)) < amount
        new = (index + rng.integers(1, len(classes), len(out))) % len(classes)
        out[col] = np.array(classes, dtype=object)[np.where(chosen, new, index)]
        out[col] = out[col].astype(batch[col].dtype)
        return out
    mean, sd = drift.reference or (0.0, 1.0)
    values = pd.to_numeric(out[col]).to_numpy(dtype=float)
    moved = (
        values + amount * sd if drift.kind == "target_shift" else mean + (values - mean) * amount
    )
    out[col] = _as_written(moved, out[col])
    return out


def write_batches(
    batches: list[pd.DataFrame], out_dir: Path, prefix: str, first: int = 1
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, batch in enumerate(batches):
        path = out_dir / f"{prefix}-{first + i:04d}.csv"
        batch.to_csv(path, index=False, lineterminator="\n")
        path.with_name(path.name + ".done").touch()  # landing protocol: the file is complete
        paths.append(path)
    return paths

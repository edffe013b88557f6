"""Request and response models built from the dataset schema in params.yaml and its suite,
and the task's answer (`response_models`: a binary model's probability and label, a
multiclass model's class among `dataset.classes` and every class's probability, a regression
model's value and its prediction interval).

Any table's schema works: numeric columns take JSON numbers, categorical ones strings, the
id column an optional string or integer; every feature is required and unknown keys are
refused. Types are strict: `true` is not 1, `"12"` is not 12 (a 422 naming the column).
What the suite demands of each column's values (`RequestChecker.rules`) is documented in
the schema that OpenAPI publishes: a column the suite never lets be null is not nullable,
an in-set column lists its levels (`enum`), a 0/1 flag is an integer, a bounded one has its
`minimum`/`maximum`. The values themselves are judged by the suite (`serve.checks`), so a
422 names the problem in the suite's words ("unseen category", "out of range").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, WithJsonSchema, create_model

from retrain.config import DatasetSchema
from retrain.serve.checks import ColumnRule
from retrain.task import Task

# Strict: a JSON bool or string is refused, where lax pydantic would make `true` 1.0.
Number = Annotated[float, Strict()]
Text = Annotated[str, Strict()]
RowId = Annotated[str, Strict()] | Annotated[int, Strict()]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_schema(rule: ColumnRule, numeric: bool) -> dict[str, Any]:
    """The JSON schema of one column's non-null values, from what the suite demands."""
    values = list(rule.values) if rule.values is not None else None
    if not numeric:
        return {"type": "string", **({"enum": values} if values is not None else {})}
    integer = rule.integer or (values is not None and all(_is_int(v) for v in values))
    out: dict[str, Any] = {"type": "integer" if integer else "number"}
    if values is not None:
        out["enum"] = values
    if rule.minimum is not None:
        out["minimum"] = rule.minimum
    if rule.maximum is not None:
        out["maximum"] = rule.maximum
    return out


def _field_type(rule: ColumnRule, numeric: bool) -> Any:
    """Strict number or string, documented as `_json_schema`; nullable unless the suite
    refuses a null in every row."""
    kind: Any = Number if numeric else Text
    base: Any = Annotated[kind, WithJsonSchema(_json_schema(rule, numeric))]
    return base if rule.needs_value else base | None


def row_model(
    schema: DatasetSchema, rules: Mapping[str, ColumnRule] | None = None
) -> type[BaseModel]:
    """One row of the table to score, as a pydantic model named after the dataset.

    Args:
        schema: the dataset section of params.yaml (which columns, numeric or categorical).
        rules: per column, what the dataset's suite demands (`RequestChecker.rules`);
            a column without one is a nullable number or string.
    """
    rules = rules or {}
    fields: dict[str, Any] = {}
    if schema.id_column:
        fields[schema.id_column] = (
            RowId | None,
            Field(default=None, description="Row id: echoed back, logged, canary key."),
        )
    for col in schema.numeric:
        kind = _field_type(rules.get(col, ColumnRule()), numeric=True)
        fields[col] = (kind, Field(..., description="numeric feature"))
    for col in schema.categorical:
        kind = _field_type(rules.get(col, ColumnRule()), numeric=False)
        fields[col] = (kind, Field(..., description="categorical feature"))
    name = "".join(part.capitalize() for part in schema.name.split("_")) + "Row"
    return create_model(name, __config__=ConfigDict(extra="forbid", frozen=True), **fields)


class Scored(BaseModel):
    """One scored row."""

    probability: float = Field(description="P(positive class) from the ONNX model")
    label: int = Field(description="1 when probability >= the model's threshold")
    id: str | int | None = Field(default=None, description="the row's id, when sent")


class ModelInfo(BaseModel):
    model_version: str = Field(description="registry version, e.g. v3.0.0")
    model: str = Field(description="GTO artifact@version")
    model_md5: str = Field(description="md5 of the served model.onnx (as in dvc.lock)")
    threshold: float = Field(description="the decision threshold of this version")


class ScoredOne(ModelInfo, Scored):
    """The answer to one row."""


class ScoredMany(ModelInfo):
    """The answer to a list of rows, in their order."""

    predictions: list[Scored]


class Problem(BaseModel):
    column: str | None = Field(description="the offending column (None: the whole request)")
    problem: str = Field(
        description="missing column, unexpected column, wrong type, missing value (null or "
        "NaN), unseen category, out of range, ..."
    )
    message: str
    rows: list[int] = Field(default_factory=list, description="0-based rows, when known")


class Rejected(BaseModel):
    """422: what is wrong with the request, per column."""

    detail: list[Problem]


# --- the answers of a multiclass and a regression model (binary: Scored* above) -------------


class VersionInfo(BaseModel):
    model_version: str = Field(description="registry version, e.g. v3.0.0")
    model: str = Field(description="GTO artifact@version")
    model_md5: str = Field(description="md5 of the served model.onnx (as in dvc.lock)")


def _class_models(classes: Sequence[Any]) -> tuple[type[BaseModel], type[BaseModel]]:
    """One row's answer and a list's for a model of `classes` (in dataset.classes order)."""
    names = [str(c) for c in classes]
    # One required property per class, named after it (aliases: a class need not be an
    # identifier), so the schema lists them.
    fields: dict[str, Any] = {
        f"p{i}": (float, Field(alias=name, description=f"P(class = {name})"))
        for i, name in enumerate(names)
    }
    probabilities = create_model(
        "ClassProbabilities",
        __config__=ConfigDict(populate_by_name=True),
        __doc__="Every class's probability (summing to 1), keyed by the class.",
        **fields,
    )
    one_of: Any = Literal[tuple(classes)]
    scored = create_model(
        "ScoredClass",
        __doc__="One scored row: its most probable class and every class's probability.",
        class_=(
            one_of,
            Field(alias="class", description="the most probable class (dataset.classes)"),
        ),
        probabilities=(probabilities, Field(description="P(class) for every class")),
        id=(str | int | None, Field(default=None, description="the row's id, when sent")),
    )
    return _answers("ScoredClass", scored)


class PredictionInterval(BaseModel):
    """The split-conformal prediction interval: prediction +- the served version's half-width,
    which covered `level` of validation rows (train.interval_level)."""

    lower: float = Field(description="prediction - half-width")
    upper: float = Field(description="prediction + half-width")
    level: float = Field(description="the share of rows the interval is made to cover, e.g. 0.9")


class ScoredValue(BaseModel):
    """One scored row: the predicted value (in the target's units) and its interval."""

    prediction: float = Field(description="the predicted value, in the target's own units")
    interval: PredictionInterval
    id: str | int | None = Field(default=None, description="the row's id, when sent")


def _answers(name: str, scored: type[BaseModel]) -> tuple[type[BaseModel], type[BaseModel]]:
    one = create_model(
        f"{name}One", __base__=(VersionInfo, scored), __doc__="The answer to one row."
    )
    many = create_model(
        f"{name}Many",
        __base__=VersionInfo,
        __doc__="The answer to a list of rows, in their order.",
        predictions=(list[scored], ...),  # type: ignore[valid-type]
    )
    return one, many


def response_models(task: Task) -> tuple[type[BaseModel], type[BaseModel]]:
    """/predict's answer to one row and to a list of rows, for a model of `task`."""
    if task.kind == "binary":
        return ScoredOne, ScoredMany
    if task.kind == "multiclass":
        return _class_models(task.classes)
    return _answers("ScoredValue", ScoredValue)

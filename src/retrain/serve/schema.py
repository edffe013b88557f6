"""Request and response models built from the dataset schema in params.yaml.

Any table's schema works: numeric columns become `float | None` fields, categorical ones
`str | None`, the id column an optional field; every feature is required and unknown keys
are refused, so OpenAPI documents exactly the columns the model reads.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from retrain.config import DatasetSchema


def row_model(schema: DatasetSchema) -> type[BaseModel]:
    """One row of the table to score, as a pydantic model named after the dataset."""
    fields: dict[str, Any] = {}
    if schema.id_column:
        fields[schema.id_column] = (
            str | int | None,
            Field(default=None, description="Row id: echoed back, logged, canary key."),
        )
    for col in schema.numeric:
        fields[col] = (float | None, Field(..., description="numeric feature"))
    for col in schema.categorical:
        fields[col] = (str | None, Field(..., description="categorical feature"))
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

"""Validate a dataframe against a Great Expectations suite kept as JSON in expectations/.

`validate_frame` runs a suite, the dataset schema's checks (every declared column present) and
the PII guard (`retrain.validation.pii`) on the feature columns; the schema is required, so no
caller can skip the guard. Callers use `retrain.validation.raw.validate_raw`, which takes it
from params. An expectation's `severity` decides whether it blocks: "critical" blocks the
pipeline, "warning" and "info" are reported only. Its `meta.why` says why it exists. A column
that looks like personal data, or a declared column that is absent, always blocks.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.assets import localise_tree
from retrain.config import DatasetSchema
from retrain.errors import ConfigMismatch, DataError
from retrain.validation.pii import PiiFinding, find_pii
from retrain.validation.precheck import passes

BLOCKING = "critical"


@dataclass(frozen=True)
class Failure:
    """One failed expectation, in words a user can act on."""

    expectation: str
    column: str | None
    severity: str
    why: str
    detail: str
    unexpected_count: int | None = None
    examples: list[Any] = field(default_factory=list)
    # 0-based positions in the table of the first unexpected values (when GE reports them).
    rows: list[int] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    def message(self, source: str) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        return f"{source}: {where} failed {self.expectation}: {self.detail}"


@dataclass(frozen=True)
class ValidationResult:
    """What a suite said about one table."""

    source: str
    suite: str
    success: bool
    n_rows: int
    evaluated: int
    failures: list[Failure]
    data_docs: str | None = None
    pii: list[PiiFinding] = field(default_factory=list)
    # Columns params.yaml's dataset declares that the table lacks (the schema checks).
    missing_columns: list[str] = field(default_factory=list)

    @property
    def blocking_failures(self) -> list[Failure]:
        return [f for f in self.failures if f.blocking]

    def schema_messages(self) -> list[str]:
        return [
            f"{self.source}: column {c!r} is declared in params.yaml dataset but absent"
            for c in self.missing_columns
        ]

    def headline(self) -> str:
        """One line: the first blocking problem (personal data first), and how many more."""
        problems = [p.message(self.source) for p in self.pii]
        problems += [f.message(self.source) for f in self.blocking_failures]
        problems += self.schema_messages()
        if not problems:
            return f"{self.source}: {self.evaluated} expectations of {self.suite} passed"
        more = f" (+{len(problems) - 1} more blocking)" if len(problems) > 1 else ""
        return problems[0] + more

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["blocking_failures"] = len(self.blocking_failures)
        out["headline"] = self.headline()
        return out


def load_suite_json(path: Path) -> dict[str, Any]:
    """Read a suite file; a missing or malformed file is a one-line error."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: expectation suite not found") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: expectation suite is not valid JSON: {err}") from None
    if not isinstance(raw, dict) or "expectations" not in raw:
        raise DataError(f"{path}: expectation suite has no 'expectations' list")
    return raw


def check_suite(path: Path | str, suite_json: dict[str, Any]) -> None:
    """Every entry must be an expectation GE knows, with keywords it accepts.

    Great Expectations logs and drops an entry it cannot build (a typo in the type) and the
    suite then passes with one check fewer; here it is an error naming the file and entry.

    Raises:
        ConfigMismatch: the first bad entry: its position, type and column, and what is wrong.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import difflib

    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import (
        get_expectation_impl,
        list_registered_expectation_implementations,
    )
    from pydantic.v1 import ValidationError as V1Error

    entries = suite_json.get("expectations")
    if not isinstance(entries, list):
        raise ConfigMismatch(f"{path}: 'expectations' is not a list")
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigMismatch(f"{path}: expectation #{i} is not an object")
        kind = str(entry.get("type"))
        kwargs = entry.get("kwargs") or {}
        column = kwargs.get("column") if isinstance(kwargs, dict) else None
        where = f"{path}: expectation #{i} {kind}" + (f" (column {column!r})" if column else "")
        try:
            impl = get_expectation_impl(kind)
        except ExpectationNotFoundError:
            close = difflib.get_close_matches(
                kind, list_registered_expectation_implementations(), n=1
            )
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigMismatch(f"{where}: unknown expectation type{hint}") from None
        if not isinstance(kwargs, dict):
            raise ConfigMismatch(f"{where}: 'kwargs' is not an object")
        extra = {k: entry[k] for k in ("severity", "meta") if entry.get(k) is not None}
        try:
            impl(**kwargs, **extra)
        except V1Error as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            what = {
                "value_error.extra": "unknown keyword",
                "value_error.missing": "missing keyword",
            }.get(first["type"], first["msg"])
            raise ConfigMismatch(f"{where}: {what} {key!r}") from None
        except Exception as err:  # GE's own checks raise their own types
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ConfigMismatch(f"{where}: {_clip(msg)}") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


MAX_DETAIL = 200  # an exception message can quote a whole column


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def _detail(result: dict[str, Any], exception: dict[str, Any] | None) -> tuple[str, list[Any]]:
    if exception and exception.get("raised_exception"):
        msg = str(exception.get("exception_message") or "could not be evaluated")
        return _clip(msg.splitlines()[0]), []
    mismatched = (result.get("details") or {}).get("mismatched")
    if mismatched:
        parts = [f"{k} {sorted(v)}" for k, v in sorted(mismatched.items()) if v]
        return "; ".join(parts), []
    examples = [_jsonable(v) for v in result.get("partial_unexpected_list") or []]
    if result.get("unexpected_count") is not None:
        total = result.get("element_count")
        of = f" of {total}" if total is not None else ""
        eg = f", e.g. {examples}" if examples else ""
        return f"{result['unexpected_count']}{of} rows unexpected{eg}", examples
    observed = result.get("observed_value")
    return f"observed {_jsonable(observed)!r}", []


def _exception_of(info: Any) -> dict[str, Any] | None:
    """GE nests exceptions per metric when a metric fails; take the first that raised."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return info
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value
    return None


def _rows(result: dict[str, Any]) -> list[int]:
    return [
        int(i) for i in result.get("partial_unexpected_index_list") or [] if isinstance(i, int)
    ]


def _not_numbers(
    df: pd.DataFrame, cfg: Any, n: int
) -> tuple[str, int, list[Any], list[int]] | None:
    """For a numeric type-list failure on a text column: the values that are not numbers.

    GE judges the column's dtype, so it counts every row; the reviewer needs the few values
    that made the column text (e.g. "twelve" among 7,000 numbers).
    """
    column = cfg.kwargs.get("column")
    types = cfg.kwargs.get("type_list") or []
    numeric = types and all(str(t).lower().startswith(("int", "uint", "float")) for t in types)
    if not numeric or column not in df.columns or df[column].dtype != object:
        return None
    values = df[column]
    bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
    if not bad.any():
        return None
    examples = [_jsonable(v) for v in values[bad].head(n)]
    rows = [int(i) for i in np.flatnonzero(bad.to_numpy())[:n]]
    detail = (
        f"{int(bad.sum())} of {len(df)} values are not numbers (column dtype object), "
        f"e.g. {examples}"
    )
    return _clip(detail), int(bad.sum()), examples, rows


def _severity(cfg: Any) -> str:
    sev = getattr(cfg, "severity", None) or BLOCKING
    return str(getattr(sev, "value", sev)).lower()


class DocsSite:
    """One Data Docs site holding several tables' validations, each its own run named by its
    file: the `validate` stage's site lists every pinned file, accepted batches included (a
    site per call held only the last file's). Built once, by `build`, after the last one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._context: Any = None

    def context(self) -> Any:
        """The one GE context every validation of this site runs in (made on first use)."""
        if self._context is None:
            self._context = _context(self.directory)
        return self._context

    def build(self) -> str:
        """Write the site's HTML; its index page."""
        return str(_build_data_docs(self.context(), self.directory))


def _site(data_docs: Path | DocsSite | None) -> DocsSite | None:
    return DocsSite(data_docs) if isinstance(data_docs, Path) else data_docs


def _context(data_docs_dir: Path | None) -> Any:
    # GE phones home unless told not to; this project must run with no network.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if data_docs_dir is not None:
        for name in list(context.get_site_names()):
            context.delete_data_docs_site(name)
        context.add_data_docs_site(
            "local",
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def without_absent(suite_json: dict[str, Any], df: pd.DataFrame, optional: Sequence[str]):
    """The suite minus expectations on `optional` columns that `df` does not have.

    Scoring data has no label: the target's expectations do not apply to it.
    """
    absent = {c for c in optional if c not in df.columns}
    if not absent:
        return suite_json
    kept = []
    for e in suite_json["expectations"]:
        if e.get("kwargs", {}).get("column") in absent:
            continue
        if "column_set" in e.get("kwargs", {}):
            kwargs = dict(
                e["kwargs"], column_set=[c for c in e["kwargs"]["column_set"] if c not in absent]
            )
            e = {**e, "kwargs": kwargs}
        kept.append(e)
    return {**suite_json, "expectations": kept}


def validate_frame(
    df: pd.DataFrame,
    suite_path: Path,
    source: str,
    *,
    data_docs_dir: Path | DocsSite | None = None,
    partial_unexpected_count: int = 5,
    schema: DatasetSchema,
    optional_columns: Sequence[str] = (),
    precheck: bool = True,
) -> ValidationResult:
    """Run the suite at `suite_path` on `df`, the schema's checks and the PII guard.

    Args:
        df: the table, as read from `source`.
        suite_path: a Great Expectations suite saved as JSON.
        source: the file the table came from; every message names it.
        data_docs_dir: where to build the Data Docs HTML site (a `DocsSite` to add this
            table's validation to others'), or None for no HTML.
        partial_unexpected_count: example values kept per failed expectation.
        optional_columns: columns whose expectations are skipped when the table lacks them
            (the target, for data to be scored).
        schema: the dataset schema (required): each declared column must be present (but
            `optional_columns`), and its feature columns (less `pii_allow`) go through the
            PII guard. Both block.
        precheck: first prove passing expectations with cheap pandas checks
            (`retrain.validation.precheck`) and run only the others through Great
            Expectations, which computes the detail of failures. Data Docs show every
            expectation's result, so with `data_docs_dir` the whole suite runs through GE.

    Returns:
        A ValidationResult whose failures are listed in suite order; the same with or
        without `precheck`.
    """
    suite_json = without_absent(load_suite_json(suite_path), df, optional_columns)
    result = _validate_suite(
        df, suite_json, source, data_docs_dir, partial_unexpected_count, precheck, suite_path
    )
    pii = find_pii(df, schema.features, schema.pii_allow)
    missing = [c for c in schema.columns if c not in df.columns and c not in optional_columns]
    return replace(
        result,
        pii=pii,
        missing_columns=missing,
        success=result.success and not pii and not missing,
    )


def validate_suite(
    df: pd.DataFrame,
    suite_json: dict[str, Any],
    source: str,
    *,
    optional_columns: Sequence[str] = (),
    partial_unexpected_count: int = 5,
) -> ValidationResult:
    """`validate_frame` for a suite already in memory (the online service's reduced suite)."""
    suite_json = without_absent(suite_json, df, optional_columns)
    return _validate_suite(df, suite_json, source, None, partial_unexpected_count, True)


def _validate_suite(
    df: pd.DataFrame,
    suite_json: dict[str, Any],
    source: str,
    data_docs_dir: Path | DocsSite | None,
    partial_unexpected_count: int,
    precheck: bool,
    suite_path: Path | None = None,
) -> ValidationResult:
    expectations = suite_json["expectations"]
    if (
        not precheck
        or data_docs_dir is not None
        or not isinstance(expectations, list)
        or not isinstance(suite_json.get("name"), str)
    ):
        check_suite(suite_path or source, suite_json)
        return _validate_with_ge(
            df, suite_json, source, data_docs_dir, partial_unexpected_count, suite_path
        )
    pending = [e for e in expectations if not passes(df, e)]
    proven = len(expectations) - len(pending)
    if not pending:
        return ValidationResult(source, suite_json["name"], True, len(df), proven, [])
    # GE drops an entry it cannot build: check them all (numbered as in the file) first.
    check_suite(suite_path or source, suite_json)
    result = _validate_with_ge(
        df,
        {**suite_json, "expectations": pending},
        source,
        None,
        partial_unexpected_count,
        suite_path,
    )
    return replace(result, evaluated=result.evaluated + proven)


def _validate_with_ge(
    df: pd.DataFrame,
    suite_json: dict[str, Any],
    source: str,
    data_docs_dir: Path | DocsSite | None,
    partial_unexpected_count: int,
    suite_path: Path | None = None,
) -> ValidationResult:
    site = _site(data_docs_dir)
    context = site.context() if site else _context(None)
    suite, results = _run_suite(context, df, suite_json, source, partial_unexpected_count)
    order = {e.id: i for i, e in enumerate(suite.expectations)}
    failures = [
        _failure(r, df, partial_unexpected_count)
        for r in sorted(results.results, key=lambda r: order.get(r.expectation_config.id, 0))
        if not r.success
    ]
    stats = results.statistics
    return ValidationResult(
        source=source,
        suite=suite.name,
        success=not any(f.blocking for f in failures),
        n_rows=len(df),
        evaluated=int(stats["evaluated_expectations"]),
        failures=failures,
        # A site of several tables is built once, after the last (DocsSite.build).
        data_docs=str(data_docs_dir.directory / "index.html")
        if isinstance(data_docs_dir, DocsSite)
        else _build_data_docs(context, site.directory if site else None),
    )


def _run_suite(
    context: Any,
    df: pd.DataFrame,
    suite_json: dict[str, Any],
    source: str,
    partial_unexpected_count: int,
) -> tuple[Any, Any]:
    """(the suite as GE holds it, GE's validation results) of `df` in `context`."""
    import great_expectations as gx

    # A DocsSite's context already holds the suite and the data source from its other tables.
    suite = context.suites.add_or_update(gx.ExpectationSuite(**suite_json))
    pandas = (
        context.data_sources.get("retrain")
        if "retrain" in context.data_sources.all()
        else context.data_sources.add_pandas("retrain")
    )
    batch_def = pandas.add_dataframe_asset(
        _asset_name(pandas, Path(source).name or "table")
    ).add_batch_definition_whole_dataframe("whole")
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite.name}-check", data=batch_def, suite=suite)
    )
    from great_expectations.core.run_identifier import RunIdentifier

    results = definition.run(
        # Data Docs list validations by run name ("__none__" without one): the file's name.
        run_id=RunIdentifier(run_name=Path(source).name or "table"),
        batch_parameters={"dataframe": df},
        result_format={
            "result_format": "SUMMARY",
            "partial_unexpected_count": partial_unexpected_count,
        },
    )
    return suite, results


def _asset_name(source: Any, name: str) -> str:
    """`name`, or `name (2)`, ... when the data source has an asset of that name already (two
    pinned files of one name in different folders)."""
    taken = {a.name for a in source.assets}
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name} ({n})"
    return unique


def _failure(r: Any, df: pd.DataFrame, partial_unexpected_count: int) -> Failure:
    """One failed expectation's result as a `Failure` (type errors named by row)."""
    cfg = r.expectation_config
    result = dict(r.result or {})
    detail, examples = _detail(result, _exception_of(r.exception_info))
    count, rows = result.get("unexpected_count"), _rows(result)
    if cfg.type == "expect_column_values_to_be_in_type_list":
        typed = _not_numbers(df, cfg, partial_unexpected_count)
        if typed is not None:
            detail, count, examples, rows = typed
    return Failure(
        expectation=cfg.type,
        column=cfg.kwargs.get("column"),
        severity=_severity(cfg),
        why=str((cfg.meta or {}).get("why", "")),
        detail=detail,
        unexpected_count=count,
        examples=examples,
        rows=rows,
    )


def _build_data_docs(context: Any, data_docs_dir: Path | None) -> str | None:
    """Data Docs HTML in `data_docs_dir` (its index page), or None when not asked for."""
    if data_docs_dir is None:
        return None
    context.build_data_docs(site_names=["local"])
    # GE links its CSS/JS/fonts from CDNs: served from beside the pages, they open offline.
    localise_tree(data_docs_dir)
    local_logos(data_docs_dir)
    return str(data_docs_dir / "index.html")


# GE 1.x's navbar template hard-codes its logos on S3 (no site option changes it): offline
# they show broken. The site carries logo-long.png in static/images; the CSS background
# logo (full_logo_dark.png) is not shipped, and the <img> above it already shows the logo.
_GE_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
_LOGO = re.compile(re.escape(_GE_ASSETS) + r"logo-long\.png(\?[^\"']*)?")
_BACKGROUND = re.compile(r"url\(['\"]?" + re.escape(_GE_ASSETS) + r"full_logo_dark\.png['\"]?\)")


def local_logos(root: Path) -> None:
    """Point every Data Docs page under `root` at the logo in root/static/images."""
    logo = root / "static" / "images" / "logo-long.png"
    for page in sorted(root.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        rel = Path(os.path.relpath(logo, page.parent)).as_posix()
        fixed = _BACKGROUND.sub("none", _LOGO.sub(rel, html))
        if fixed != html:
            page.write_text(fixed, encoding="utf-8")

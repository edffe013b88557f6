"""What a pull request changes in the expectation suites, expectation by expectation.

Suites are JSON reviewed like code; a reviewer wants "value_set of payment_method gained
'Digital wallet'", not a 40-line JSON diff. Expectations are matched by type, column and
row condition (several expectations may share a type and column: they are told apart by
their condition, then by order).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

Key = tuple[str, str | None, str | None, int]


@dataclass(frozen=True)
class ExpectationChange:
    """One expectation added, removed or changed in one suite file."""

    suite: str
    change: str  # added, removed or changed
    expectation: str
    column: str | None
    severity: str | None
    details: list[str] = field(default_factory=list)
    condition: str | None = None  # the row_condition, when the expectation has one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _keyed(expectations: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    out: dict[Key, dict[str, Any]] = {}
    seen: dict[tuple[str, str | None, str | None], int] = {}
    for e in expectations:
        kwargs = e.get("kwargs") or {}
        base = (str(e.get("type")), kwargs.get("column"), kwargs.get("row_condition"))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out[(*base, n)] = e
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _value_change(name: str, old: Any, new: Any) -> str:
    if isinstance(old, list) and isinstance(new, list):
        added = [v for v in new if v not in old]
        removed = [v for v in old if v not in new]
        parts = []
        if added:
            parts.append(f"added {_short(added)}")
        if removed:
            parts.append(f"removed {_short(removed)}")
        return f"{name}: " + ("; ".join(parts) if parts else "reordered")
    if old is None:
        return f"{name}: set to {_short(new)}"
    if new is None:
        return f"{name}: {_short(old)} removed"
    return f"{name}: {_short(old)} → {_short(new)}"


def _details(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    old_kw, new_kw = old.get("kwargs") or {}, new.get("kwargs") or {}
    for key in sorted(set(old_kw) | set(new_kw)):
        if key in ("column", "row_condition", "condition_parser"):
            continue
        if old_kw.get(key) != new_kw.get(key):
            out.append(_value_change(key, old_kw.get(key), new_kw.get(key)))
    if old.get("severity") != new.get("severity"):
        out.append(_value_change("severity", old.get("severity"), new.get("severity")))
    old_meta, new_meta = old.get("meta") or {}, new.get("meta") or {}
    for key in sorted(set(old_meta) | set(new_meta)):
        if old_meta.get(key) != new_meta.get(key):
            out.append(f"meta.{key} changed")
    return out


def _summary(e: dict[str, Any]) -> list[str]:
    kwargs = e.get("kwargs") or {}
    skip = ("column", "row_condition", "condition_parser")
    return [f"{k}: {_short(v)}" for k, v in sorted(kwargs.items()) if k not in skip]


def diff_suite(
    name: str, base: dict[str, Any] | None, head: dict[str, Any] | None
) -> list[ExpectationChange]:
    """Expectations added, removed and changed between two versions of one suite.

    Args:
        name: the suite's file, named in every change.
        base: the suite JSON at the base, or None when the head adds the file.
        head: the suite JSON at the head, or None when the head deletes the file.
    """
    old = _keyed((base or {}).get("expectations") or [])
    new = _keyed((head or {}).get("expectations") or [])
    changes = []
    for key in [*old, *(k for k in new if k not in old)]:
        kind, column, condition = key[0], key[1], key[2]
        if key not in new or key not in old:
            change, e = ("removed", old[key]) if key not in new else ("added", new[key])
            details = _summary(e)
        else:
            change, e = "changed", new[key]
            details = _details(old[key], e)
            if not details:
                continue
        changes.append(
            ExpectationChange(
                name, change, kind, column, e.get("severity"), details, condition=condition
            )
        )
    return changes

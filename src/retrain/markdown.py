"""Markdown pieces shared by the README, the model card, the PR report and the Prefect UI."""

from __future__ import annotations

import re
from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table's lines. `align` has one letter per column, `l` or `r` (default `l`)."""
    align = align.ljust(len(header), "l")
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r} does not fit {len(header)} columns")
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in align)
    return [
        "| " + " | ".join(header) + " |",
        rule,
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def markers(name: str) -> tuple[str, str]:
    """The comments that delimit a generated block named `name` in a Markdown document."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(text: str, name: str, block: str) -> str:
    """`text` with `block` between its `name` markers (`block` ends with a newline).

    Raises:
        ValueError: `text` has no such block.
    """
    start, end = markers(name)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"no {start} ... {end} block found")
    return pattern.sub(lambda _: f"{start}\n{block}{end}", text)

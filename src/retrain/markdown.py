"""Markdown pieces shared by the README, the model card, the PR report and the Prefect UI."""

from __future__ import annotations

import html
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


# The look of every page the pipeline writes itself (model card, drift summary, empty drift
# page): one stylesheet, so the reports read as one set.
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #1b1b1b; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; }
th { background: #f3f3f3; }
code, pre { background: #f6f6f6; }
pre { padding: 0.6rem; overflow-x: auto; }
"""


def html_page(title: str, body: str) -> str:
    """A standalone HTML page in the reports' style (no scripts, no external resources)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )

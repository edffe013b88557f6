"""No function in src/ longer than a reader can hold (STYLE.md: ~60 lines) without a reason.

A function's length is its lines from `def` to its last line, less its docstring (prose that
helps the reader, not code to hold). One over LIMIT needs a `# long: <reason>` comment on a
line of its signature or just above it. Every offender is reported at once.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

LIMIT = 60
SRC = REPO / "src"
REASON = "# long:"


def _length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    assert node.end_lineno is not None
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str) and first.end_lineno is not None:
            lines -= first.end_lineno - first.lineno + 1
    return lines


def _has_reason(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> bool:
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    signature_end = node.body[0].lineno - 1
    return any(REASON in line for line in lines[max(0, start - 1) : signature_end])


def long_functions(path: Path, root: Path = REPO) -> list[tuple[str, int]]:
    """`path:name` and length of each function in `path` over LIMIT without a reason."""
    text = path.read_text()
    lines = text.splitlines()
    where = path.relative_to(root).as_posix()
    found = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = _length(node)
            if length > LIMIT and not _has_reason(node, lines):
                found.append((f"{where}:{node.name}", length))
    return found


def all_long_functions() -> dict[str, int]:
    return {
        name: length for path in sorted(SRC.rglob("*.py")) for name, length in long_functions(path)
    }


def test_no_function_in_src_is_over_the_limit_without_a_reason():
    found = all_long_functions()
    assert not found, f"functions over {LIMIT} lines without a '{REASON} <why>' comment:\n" + (
        "\n".join(f"{name}: {length} lines" for name, length in sorted(found.items()))
    )


def test_a_long_function_needs_a_reason(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(LIMIT))
    (tmp_path / "m.py").write_text(
        f'def long():\n    """Docs\n\n    do not count."""\n{body}\n'
        f"def short():\n{body[: -len(f'    x{LIMIT - 1} = {LIMIT - 1}') - 1]}\n"
        f"# long: a table of {LIMIT} rows reads best in one place\n"
        f"def reasoned():\n{body}"
    )
    assert long_functions(tmp_path / "m.py", tmp_path) == [("m.py:long", LIMIT + 1)]

"""A line-level editor for a block-style YAML file such as params.yaml: find a key by its
path, replace its value, insert or delete it, and keep every other line, comments included,
exactly as written.

Why not a round-trip YAML library: ruamel.yaml keeps comments only in private structures
(`.ca`, comment tokens) that its public API can add to but not read or move, and re-indents
the whole file on dump. Editing the few lines that change leaves the rest untouched by
construction. Values are rendered by ruamel's public dumper (`params_edit.render`), so each
scalar is quoted as YAML needs.

Comments inside a replaced or deleted value are not lost: full-line ones, and end-of-line
ones that `keep` accepts, move above the key, in order. An end-of-line comment on the key's
own line stays on it, at its column when the new value leaves room.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# `key:` at the start of a line: a quoted key, or a plain one (not a list item's `- `).
_KEY = re.compile(
    r"""^(?P<indent> *)(?P<key>'[^']*'|"[^"]*"|[^\s#'"\-?:][^#]*?|-[^\s#][^#]*?)\s*:(?:\s|$)"""
)


@dataclass(frozen=True)
class Span:
    """A key's line and its value's lines: `lines[start:end]` (comments after it excluded)."""

    start: int
    end: int
    indent: int


def _content(line: str) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def key_of(line: str) -> str | None:
    """The key a `key: value` line names (unquoted), or None."""
    match = _KEY.match(line)
    if not match:
        return None
    key = match.group("key").strip()
    return key[1:-1] if key[:1] in "'\"" and key[-1:] == key[:1] and len(key) > 1 else key


def split_comment(line: str) -> tuple[str, str | None, int]:
    """(content, comment, its column) of a line: the comment from its first `#` outside
    quotes that follows a blank (YAML's rule), or None and -1."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"" and (i == 0 or line[i - 1] in " [{,:"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i:], i
    return line.rstrip(), None, -1


def _value_end(lines: list[str], start: int) -> int:
    """One past the last line of the value of the key on `lines[start]`."""
    indent, last = _indent(lines[start]), start
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if not _content(line):
            continue
        deeper = _indent(line) > indent
        item = (
            _indent(line) == indent
            and line.lstrip().startswith(("- ", "-\t"))
            or (_indent(line) == indent and line.strip() == "-")
        )
        if not (deeper or item):
            break
        last = i
    return last + 1


def children(lines: list[str], lo: int, hi: int) -> list[tuple[str, Span]]:
    """The keys of the mapping held by `lines[lo:hi]` (their indent: the first content
    line's), each with its span."""
    first = next((i for i in range(lo, hi) if _content(lines[i])), None)
    if first is None:
        return []
    indent, out = _indent(lines[first]), []
    for i in range(first, hi):
        if _content(lines[i]) and _indent(lines[i]) == indent:
            key = key_of(lines[i])
            if key is not None:
                out.append((key, Span(i, _value_end(lines, i), indent)))
    return out


class Document:
    """The lines of a YAML file, edited in place by key path."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")  # a final newline leaves one empty last line

    def text(self) -> str:
        return "\n".join(self.lines)

    def find(self, path: tuple[str, ...]) -> Span | None:
        lo, hi, span = 0, len(self.lines), None
        for key in path:
            span = dict(children(self.lines, lo, hi)).get(key)
            if span is None:
                return None
            lo, hi = span.start + 1, span.end
        return span

    def value(self, path: tuple[str, ...]) -> Any:
        """The parsed value of `path` (None when it is missing)."""
        import yaml

        span = self.find(path)
        if span is None:
            return None
        block = "\n".join(line[span.indent :] for line in self.lines[span.start : span.end])
        return (yaml.safe_load(block) or {}).get(path[-1])

    def keys(self, path: tuple[str, ...]) -> list[tuple[str, Span]]:
        span = self.find(path)
        return [] if span is None else children(self.lines, span.start + 1, span.end)

    def set(
        self,
        path: tuple[str, ...],
        block: list[str],
        *,
        after: tuple[str, ...] = (),
        first: bool = False,
        comment: str | None = None,
        keep: Callable[[str], bool] = lambda _: True,
    ) -> None:
        """Make `block` (`key: value` and its lines, written at indent 0) the value of
        `path`: in place if the key exists, else after the first sibling of `after` found
        (searched from the last), else first or last in its parent (created if missing).
        `comment`: a full-line comment written directly above the key."""
        span = self.find(path)
        if span is None:
            at, indent = self._new_place(path, after, first)
            moved: list[str] = []
            eol = None
        else:
            at, indent = span.start, span.indent
            moved, eol = self._remove(span, keep)
        pad = " " * indent
        new = [pad + line if line else line for line in block]
        if eol is not None:
            new[0] = _with_comment(new[0], *eol)
        notes = [f"{pad}# {comment}"] if comment is not None else []
        self.lines[at:at] = [pad + m for m in moved] + notes + new

    def delete(self, path: tuple[str, ...], keep: Callable[[str], bool] = lambda _: True) -> None:
        """Remove `path` and its value; its comments stay, as full-line comments."""
        span = self.find(path)
        if span is None:
            return
        moved, eol = self._remove(span, keep)
        if eol is not None:
            moved.append(eol[0])
        self.lines[span.start : span.start] = [" " * span.indent + m for m in moved]

    def _remove(
        self, span: Span, keep: Callable[[str], bool]
    ) -> tuple[list[str], tuple[str, int] | None]:
        """Cut the span out; (the comments inside it, the key line's comment and column)."""
        _, eol, column = split_comment(self.lines[span.start])
        moved = []
        for line in self.lines[span.start + 1 : span.end]:
            content, note, _ = split_comment(line)
            if not content.strip() and note is not None:
                moved.append(note)
            elif note is not None and keep(note.lstrip("# ")):
                moved.append(f"# {content.strip()}: {note.lstrip('# ')}")
        del self.lines[span.start : span.end]
        return moved, (None if eol is None else (eol, column))

    def _new_place(
        self, path: tuple[str, ...], after: tuple[str, ...], first: bool
    ) -> tuple[int, int]:
        """Where a missing key goes (line, indent), its parents created when missing."""
        parent = path[:-1]
        span = self.find(parent) if parent else None
        if parent and (span is None or span.end == span.start + 1):
            # Missing, or an inline value (`{}`, `{a: 1}`, none): it becomes a block mapping.
            self.set(parent, _block(parent[-1], self.value(parent) if span else None))
        siblings = self.keys(parent) if parent else children(self.lines, 0, len(self.lines))
        found = dict(siblings)
        for key in reversed(after):
            if key in found:
                return found[key].end, found[key].indent
        outer = self.find(parent) if parent else None
        indent = siblings[0][1].indent if siblings else (outer.indent + 2 if outer else 0)
        if first and outer is not None:
            return outer.start + 1, indent
        if siblings:
            return siblings[-1][1].end, indent
        return (outer.end if outer else self._end()), indent

    def _end(self) -> int:
        end = len(self.lines)
        while end and not self.lines[end - 1].strip():
            end -= 1
        return end


def _with_comment(line: str, comment: str, column: int) -> str:
    """`line` with `comment` at `column`, or one space after it when it is longer."""
    return line + " " * max(1, column - len(line)) + comment


def _block(key: str, value: Any) -> list[str]:
    """`key:` and a mapping's entries in block style (nothing else under it yet)."""
    import yaml

    if not isinstance(value, dict) or not value:
        return [f"{key}:"]
    text = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False, width=4096)
    return text.rstrip("\n").split("\n")

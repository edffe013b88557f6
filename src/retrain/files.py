"""Writing the files the pipeline publishes: whole or not at all, JSON one way.

A reader (DVC, the flows, a second process) never sees half a file: the text goes to a
temporary file beside the target, then replaces it in one rename. JSON is written with sorted
keys, two-space indents and a trailing newline, so equal data is equal bytes, and never with
NaN or Infinity, which are not JSON (DVC, browsers and `jq` reject them).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically (parent folders created, the usual permissions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("x") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def json_text(
    data: Any, *, sort_keys: bool = True, default: Callable[[Any], Any] | None = None
) -> str:
    """`data` as the JSON text `write_json` writes.

    Raises:
        ValueError: `data` holds a NaN or an infinity.
    """
    return json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=False, default=default) + "\n"


def write_json(
    path: Path,
    data: Any,
    *,
    sort_keys: bool = True,
    default: Callable[[Any], Any] | None = None,
) -> Path:
    """Write `data` as JSON to `path` atomically (see `json_text`)."""
    return write_text(path, json_text(data, sort_keys=sort_keys, default=default))

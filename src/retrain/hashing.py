"""Content hashes of files, in the form DVC records them (md5 hex digests)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_md5(path: Path) -> str:
    """The md5 of a file's bytes, read a megabyte at a time (batches can be large)."""
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

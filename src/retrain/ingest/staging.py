"""A private, real copy of a landed entry's bytes, taken without trusting the entry.

Only regular files are read: the type is checked with `lstat` before any open (a FIFO would
block the reader forever, holding the project lock), and again on the opened descriptor, so an
entry swapped for a link or a FIFO in between is refused too.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import zlib
from pathlib import Path

from retrain.ingest.results import one_line

KINDS = {".csv.gz": ".csv", ".csv": ".csv", ".parquet": ".parquet", ".pq": ".parquet"}
_CHUNK = 1 << 20
_TYPES = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegular(OSError):
    """The entry is not a regular file (any more); its kind, in words, is the message."""


def kind(name: str) -> tuple[str, str] | None:
    """(stem, stored suffix) of a readable landed name, None for an unsupported type."""
    lower = name.lower()
    for ext, stored in KINDS.items():
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], stored
    return None


def entry_type(mode: int) -> str | None:
    """What an `lstat` mode is, in words, when it is not a regular file; None when it is."""
    if stat.S_ISREG(mode):
        return None
    return next((words for test, words in _TYPES if test(mode)), "not a regular file")


def copy_regular(src: Path, dest: Path) -> None:
    """A real copy of `src`'s bytes; a link, FIFO, device or socket raises without a read.

    O_NONBLOCK: opening a FIFO that no writer holds would otherwise wait forever, before
    fstat could say what it is; on a regular file the flag changes nothing.
    """
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        what = entry_type(os.fstat(fd).st_mode)
        if what is not None:
            raise NotRegular(what)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh, dest.open("wb") as out:
        shutil.copyfileobj(fh, out, _CHUNK)
        out.flush()
        os.fsync(out.fileno())


def decompress(src: Path, dest: Path, name: str, max_bytes: int) -> str | None:
    """Gunzip `src` into `dest`; a one-line reason when it is not a complete gzip file or
    unpacks to more than `max_bytes` (a gzip bomb stops there, not when the disk is full)."""
    written = 0
    try:
        with gzip.open(src, "rb") as fh, dest.open("wb") as out:
            while chunk := fh.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    return (
                        f"{name}: unpacks to more than {max_bytes} bytes, the limit "
                        "(params.yaml ingest.max_file_bytes)"
                    )
                out.write(chunk)
    except (OSError, EOFError, zlib.error) as err:
        return f"{name}: not a complete gzip file ({one_line(str(err), 80)})"
    return None


def count_rows(path: Path, stored: str) -> int | None:
    """Data rows in a staged table, from its bytes (CSV lines, Parquet metadata)."""
    try:
        if stored == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        lines, last, blank = 0, b"\n", True
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
                blank = blank and not chunk.strip()
    except Exception:  # an unreadable file: its reason says why; rows are unknown
        return None
    if blank:
        return 0
    return max(lines + (0 if last == b"\n" else 1) - 1, 0)

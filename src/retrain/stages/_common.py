"""What every stage's `main()` shares: read params, run, report errors in one line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from retrain.config import ConfigError, Params, load_params
from retrain.errors import RetrainError

T = TypeVar("T")


def write_json(path: Path, data: Any) -> Path:
    """Write JSON with sorted keys and a trailing newline, so equal data is equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def stage_main(name: str, run: Callable[[Params], T], argv: list[str] | None = None) -> T:
    """Parse `--params`, run the stage, turn a RetrainError into one line and exit code 1."""
    parser = argparse.ArgumentParser(prog=f"python -m retrain.stages.{name}")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    try:
        return run(load_params(args.params))
    except (RetrainError, ConfigError) as err:
        print(f"{name}: {err}", file=sys.stderr)
        raise SystemExit(1) from None

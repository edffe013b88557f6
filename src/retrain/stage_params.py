"""The params.yaml keys each DVC stage reads, as dvc.yaml lists them: the README's table.

A stage's `params:` in dvc.yaml is what DVC watches to rerun it, and
tests/unit/test_dvc_deps.py checks each list against the keys the stage's code reads; so the
README's table is generated from dvc.yaml, never typed:

    python -m retrain.stage_params README.md
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from retrain import PARAMS_FILE
from retrain.markdown import replace_block, table

BLOCK = "stage-params"
SHARED = ("seed", "dataset", "paths")  # sections every stage may read (STYLE.md: one config)


def _keys(entry: Any) -> list[str]:
    """The keys one `params:` entry names: `key`, or `{file: [keys]}` (another file's keys
    are shown as `file:key`, a whole file as `file`)."""
    if isinstance(entry, str):
        return [entry]
    out: list[str] = []
    for file, keys in dict(entry).items():
        prefix = "" if file == PARAMS_FILE else f"{file}:"
        out += [f"{prefix}{k}" for k in keys] if keys else [str(file)]
    return out


def stage_params(pipeline: dict[str, Any]) -> dict[str, list[str]]:
    """Each stage of a parsed dvc.yaml and the params keys it lists, in the file's order."""
    return {
        name: [k for entry in stage.get("params", []) for k in _keys(entry)]
        for name, stage in pipeline.get("stages", {}).items()
    }


def _codes(keys: list[str]) -> str:
    return ", ".join(f"`{k}`" for k in keys) or "—"


def params_table(dvc_yaml: str) -> str:
    """The Markdown table: per stage, its own section, the shared sections, other keys."""
    rows = []
    for name, keys in stage_params(yaml.safe_load(dvc_yaml)).items():
        section = [k.split(".")[0] for k in keys]
        own = [k for k, s in zip(keys, section, strict=True) if s == name]
        shared = [k for k, s in zip(keys, section, strict=True) if s in SHARED]
        other = [k for k in keys if k not in own and k not in shared]
        rows.append([f"**{name}**", _codes(own), _codes(shared), _codes(other)])
    head = ["stage", "its own section", "shared sections", "other sections' keys"]
    return "\n".join(table(head, rows)) + "\n"


def update_readme(readme: Path, dvc_yaml: Path) -> bool:
    """Rewrite `readme`'s stage-params block from `dvc_yaml`; True when it changed."""
    text = readme.read_text()
    new = replace_block(text, BLOCK, params_table(dvc_yaml.read_text()))
    if new != text:
        readme.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> None:
    """`python -m retrain.stage_params [README.md [dvc.yaml]]`, in the checkout."""
    args = sys.argv[1:] if argv is None else argv
    readme = Path(args[0] if args else "README.md")
    dvc_yaml = Path(args[1] if len(args) > 1 else "dvc.yaml")
    changed = update_readme(readme, dvc_yaml)
    print(f"{readme}: stage-params block {'updated' if changed else 'already current'}")


if __name__ == "__main__":
    main()

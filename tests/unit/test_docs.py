"""The docs say what the code does: a contract kept by hand, checked here.

- every relative link and image in README.md and docs/*.md opens a file (and a `#heading`
  that exists), and every repository path the docs cite in code (`tests/...`, `src/...`)
  exists: a renamed file or section fails here, not in a reader's browser;
- every `retrain <command>` the docs show is a command of the CLI;
- the architecture picture names every DVC stage, every flow file and the data paths of
  params.yaml it draws, and loads nothing from outside;
- "Use your own table"'s checklist names only keys params.yaml has, and every key
  `retrain init` writes and every dataset key the config knows is in it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md"))]
SVG = REPO / "docs" / "architecture.svg"
CHECKLIST_START, CHECKLIST_END = "<!-- checklist:start -->", "<!-- checklist:end -->"
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMG = re.compile(r"<img\s[^>]*src=\"([^\"]+)\"", re.I)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
# `retrain X [Y]` where a command starts: a line or code span, after `.venv/bin/`, `&& `, `$ `
# (not `retrain/retrain run`, a deployment, nor a state named `Drift: retrain started`).
COMMAND = re.compile(
    r"(?:^|(?<=bin/)|(?<=&& )|(?<=\$ ))retrain[ \t]+([a-z][\w-]*)(?:[ \t]+(\S+))?", re.M
)
# A repository path as the docs cite one: a top-level folder of the checkout, then a file.
CITED_PATH = re.compile(r"^(?:src|tests|bench|flows|docs|expectations|\.github|\.ci)/[\w./-]+$")


def _prose(text: str) -> str:
    """The Markdown outside fenced code blocks (a link in a code block is not a link)."""
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def _anchors(doc: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(doc.read_text()).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if not match:
            continue
        slug = _slug(match.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return frozenset(anchors)


def _links(doc: Path) -> list[str]:
    prose = _prose(doc.read_text())
    return LINK.findall(prose) + IMG.findall(prose)


def _code(doc: Path) -> list[str]:
    """Every piece of code the document shows: fenced blocks and inline spans."""
    text = doc.read_text()
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    return blocks + [m.group(2) for m in CODE_SPAN.finditer(FENCE.sub("", text))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_and_image_resolves(doc):
    broken = []
    for target in _links(doc):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target} (no file {file.relative_to(REPO)})")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {file.relative_to(REPO)})")
    assert not broken, f"{doc.relative_to(REPO)}: broken links {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_cited_repository_path_exists(doc):
    cited = {
        token.split(":")[0].rstrip(".,")
        for code in _code(doc)
        for token in code.split()
        if CITED_PATH.match(token.split(":")[0].rstrip(".,"))
    }
    missing = sorted(p for p in cited if not (REPO / p).exists())
    assert not missing, f"{doc.relative_to(REPO)} cites files that do not exist: {missing}"


def test_the_readme_and_the_architecture_page_show_the_picture():
    for doc in (README, REPO / "docs" / "architecture.md"):
        shown = [t for t in _links(doc) if (doc.parent / t).resolve() == SVG]
        assert shown, f"{doc.relative_to(REPO)} does not show docs/architecture.svg"


@cache
def _cli() -> Any:
    import typer

    from retrain.cli import app

    return typer.main.get_command(app)


def _cited_commands() -> set[tuple[str, ...]]:
    """`retrain X` (and `retrain X Y` where X is a group) as shown in the docs' code."""
    found = set()
    for doc in DOCS:
        for code in _code(doc):
            for match in COMMAND.finditer(code):
                found.add((match.group(1), match.group(2) or ""))
    return found


def test_every_retrain_command_the_docs_show_exists():
    cli = _cli()
    cited = _cited_commands()
    assert ("init", "path/to/table.csv") in cited  # the scan sees the README's commands
    unknown = []
    for name, after in sorted(cited):
        command = cli.commands.get(name)
        if command is None:
            unknown.append(f"retrain {name}")
        elif hasattr(command, "commands") and after not in command.commands:
            unknown.append(f"retrain {name} {after}")
    assert not unknown, f"the docs show commands the CLI lacks: {unknown}"


@cache
def _svg_text() -> str:
    root = ET.parse(SVG).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    return "\n".join("".join(t.itertext()) for t in root.iter(f"{ns}text"))


def _params() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_the_architecture_picture_names_every_stage_flow_and_data_path():
    words = set(re.findall(r"[\w-]+", _svg_text()))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert not [s for s in stages if s not in words], "stages missing from the picture"
    text = _svg_text()
    flows = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "flows").glob("*.py"))
    assert not [f for f in flows if f not in text], "flow files missing from the picture"
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    assert not [d["name"] for d in deployments if d["name"] not in words]
    params = _params()
    paths = params["paths"]
    drawn = ["landing", "batches", "quarantine", "raw_data", "predictions_log", "serving_dir"]
    drawn += ["monitor_dir", "run_reports", "retrain_lock", "data_pin", "warm_start"]
    missing = [k for k in drawn if str(paths[k]).rstrip("/") not in text]
    assert not missing, f"params.yaml paths the picture draws under another name: {missing}"
    for stage in (params["registry"]["stage"], params["serve"]["canary_stage"]):
        assert f"#{stage}#" in text, f"GTO stage {stage!r} is not in the picture"


def test_the_architecture_picture_is_self_contained():
    raw = SVG.read_text()
    ET.fromstring(raw)  # well-formed
    refs = re.findall(r"(?:xlink:)?href=\"([^\"]*)\"", raw)
    assert all(r.startswith("#") for r in refs), refs
    assert "@import" not in raw and "<image" not in raw and "url(http" not in raw


def _checklist() -> list[str]:
    readme = README.read_text()
    assert CHECKLIST_START in readme and CHECKLIST_END in readme
    block = readme.split(CHECKLIST_START)[1].split(CHECKLIST_END)[0]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([\w.]+)`", row).group(1) for row in rows]


def _lookup(node: Any, dotted: str) -> bool:
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def test_the_checklist_names_only_keys_params_yaml_has():
    keys = _checklist()
    assert len(keys) >= 10
    params = _params()
    assert not [k for k in keys if k.split(".")[0] not in params], "unknown sections"
    # Telco is binary: the multiclass-only key is in a multiclass table's params.yaml
    # (tests/integration/test_hpc.py), not in this one.
    only_other_tasks = {"dataset.classes"}
    lacking = [k for k in keys if not _lookup(params, k) and k not in only_other_tasks]
    assert not lacking, "keys params.yaml lacks"


def test_the_checklist_lists_every_dataset_key_of_the_config():
    from retrain.config import DatasetSchema

    listed = set(_checklist())
    missing = [f"dataset.{f}" for f in DatasetSchema.model_fields if f"dataset.{f}" not in listed]
    assert not missing, f"dataset keys the checklist leaves out: {missing}"


def _changed(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            out += _changed(before.get(key), after.get(key), f"{prefix}{key}.")
        return out
    return [prefix.rstrip(".")] if before != after else []


@pytest.mark.parametrize(
    ("target", "positive"), [("left", "yes"), ("plan", None), ("visits", None)]
)  # binary, multiclass, regression
def test_every_key_retrain_init_writes_is_in_the_checklist(target, positive):
    """`retrain init`'s own params writer, on a table unlike the shipped one, for a target
    of each task: each key it changes must be one the checklist tells the user about."""
    from retrain.init import profile, update_params

    n = 120
    df = pd.DataFrame(
        {
            "member_id": range(1000, 1000 + n),
            "age": [20 + i % 50 if i % 17 else None for i in range(n)],
            "plan": [("basic", "plus", "pro")[i % 3] for i in range(n)],
            "region": [("north", "south")[i % 2] for i in range(n)],
            "visits": [(i * 7) % 31 + 0.5 * (i % 2) for i in range(n)],
            "left": [("yes", "no", "no")[i % 3] for i in range(n)],
        }
    )
    p = profile(df, target=target, name="gym_members", positive_class=positive)
    text = (REPO / "params.yaml").read_text()
    new = update_params(text, p, Path("expectations/gym_members.json"), Path("data/tables"))
    changed = _changed(yaml.safe_load(text), yaml.safe_load(new))
    assert "dataset.target" in changed and "paths.raw_data" in changed  # it did write
    listed = _checklist()
    unlisted = [k for k in changed if not any(k == c or k.startswith(c + ".") for c in listed)]
    assert not unlisted, f"keys `retrain init` writes that the checklist omits: {unlisted}"


def test_the_readme_never_tells_a_user_to_move_a_dvc_file():
    # `dvc add data/raw && mv data/raw.dvc data.dvc` fails: DVC updates data.dvc in place.
    assert "mv data/raw.dvc" not in README.read_text()


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-zA-Z][\w-]*):", (REPO / "Makefile").read_text(), re.M))


def test_every_make_target_the_docs_show_exists():
    cited = {
        m.group(1)
        for doc in DOCS
        for code in _code(doc)
        for m in re.finditer(r"(?:^|(?<=[\s(]))make ([a-z][\w-]*)", code, re.M)
    }
    assert {"run", "test", "up"} <= cited  # the scan sees the README's commands
    assert not cited - _make_targets(), (
        f"make targets the Makefile lacks: {cited - _make_targets()}"
    )


def test_the_two_commands_are_the_makefiles_and_ci_runs_the_readmes_test_command():
    """The README's first block is what a new user types: one command runs the pipeline end to
    end, one installs and passes the tests; CI must run that same test command."""
    section = README.read_text().split("## Two commands", 1)[1]
    block = FENCE.search(section)
    assert block is not None
    commands = [
        line.split("#")[0].strip() for line in block.group(0).splitlines()[1:-1] if line.strip()
    ]
    assert commands == ["make run", "make test"]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^run: .*\n(\t.*\n)*\t\$\(BIN\)/dvc repro$", makefile, re.M)
    assert re.search(r"^test: .*\n\t\$\(BIN\)/python -m pytest", makefile, re.M)
    ci = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci, ".ci/run no longer runs the README's test command"


def test_unit_tests_follow_the_packages_folders_as_the_docs_say():
    """README and docs/architecture.md: `tests/unit/<package>/` holds the unit tests of
    `src/retrain/<package>/`; a folder for a package that is gone or renamed fails here."""
    for doc in (README, REPO / "docs" / "architecture.md"):
        assert "tests/unit/<package>/" in doc.read_text() and "not every module" in doc.read_text()
    unit = REPO / "tests" / "unit"
    folders = sorted(p.name for p in unit.iterdir() if p.is_dir() and any(p.glob("test_*.py")))
    assert len(folders) >= 10
    strays = [f for f in folders if not (REPO / "src" / "retrain" / f / "__init__.py").exists()]
    assert not strays, f"tests/unit folders that are no package of src/retrain: {strays}"

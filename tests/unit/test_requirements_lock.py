"""requirements.lock, what `make install` and CI install from, still satisfies pyproject.toml:
every dependency pinned, none of torch's CUDA wheels, SQLAlchemy below 2.1 (prefect 3.8's
scheduler fails on 2.1). A pyproject edit without `make lock` fails here."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.conftest import REPO


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, version = line.strip().partition("==")
        assert sep, f"not pinned: {line!r}"
        pins[_name(name)] = version
    return pins


def test_the_lock_pins_every_dependency_of_pyproject_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    # dev, and the extras dev pulls in (`retrain[postgres,dask,s3]`): what `make install` installs.
    dev = [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    extras = {e for r in dev if r.name == "retrain" for e in r.extras}
    wanted += dev + [Requirement(r) for e in extras for r in project["optional-dependencies"][e]]
    pins = _locked()
    for req in wanted:
        if req.name in ("torch", "retrain"):
            continue  # TORCH_SPEC installs it first: CPU here, a CUDA build on a GPU machine
        version = pins.get(_name(req.name))
        assert version is not None, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {req.name}=={version}, outside {req.specifier}: `make lock`"
        )
    for extra in ("optuna-integration", "great-expectations", "prefect", "alembic", "dvc-data"):
        assert _name(extra) in pins  # transitive ones too


def test_no_torch_or_cuda_wheels_and_a_scheduler_safe_sqlalchemy():
    pins = _locked()
    assert "torch" not in pins
    assert not [n for n in pins if n.startswith(("nvidia-", "triton"))]
    major, minor = (int(x) for x in pins["sqlalchemy"].split(".")[:2])
    assert (major, minor) == (2, 0)

"""The one git client, against real git repositories."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from retrain.infra import git
from retrain.project import managed_paths
from tests.conftest import REPO, telco_params_at


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "a.json").write_text("{}\n")
    env = git.identity_env(tmp_path)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "first")):
        subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
    return root


def test_questions_about_commits_and_files(repo):
    commit = git.resolve(repo, "main")
    assert commit == git.head(repo) and len(commit) == 40
    assert git.toplevel(repo / "conf") == repo.resolve()
    assert git.files_at(repo, commit, "conf") == ["conf/a.json"]
    assert git.show(repo, commit, "conf/a.json") == "{}\n"
    assert git.show(repo, commit, "conf/missing.json") is None
    assert git.describe_head(repo) == commit[: len(git.describe_head(repo))]
    (repo / "conf" / "a.json").write_text("[]\n")
    assert git.describe_head(repo).endswith(" + uncommitted changes")
    assert git.changed_paths(repo) == ["conf/a.json"]


def test_failures_are_one_line_errors(repo):
    with pytest.raises(git.GitError, match=r"base ref 'nope' is not a commit in this clone"):
        git.resolve(repo, "nope")
    with pytest.raises(git.GitError, match=r"not inside a git checkout"):
        git.toplevel(Path("/"))
    with pytest.raises(git.GitError) as err:
        git.git(repo, "show", "no-such-rev")
    assert "\n" not in str(err.value) and "git show no-such-rev failed in" in str(err.value)
    assert git.run(repo, "show", "no-such-rev", check=False).returncode != 0


def test_changed_paths_takes_a_pathspec(repo):
    (repo / "conf" / "b.json").write_text("{}\n")
    git.git(repo, "add", "conf/b.json")
    (repo / "conf" / "a.json").write_text("[]\n")
    assert sorted(git.changed_paths(repo)) == ["conf/a.json", "conf/b.json"]
    assert git.changed_paths(repo, "conf/b.json") == ["conf/b.json"]
    assert git.changed_paths(repo, "nothing.txt") == []


def test_revision_is_dirty_for_code_not_for_what_the_pipeline_writes(tmp_path):
    """A flow's run rewrites params.yaml (overrides), dvc.lock, the warm start, the data pin
    and the metrics before train notes its revision: that is not dirty code; a source edit is."""
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    params = telco_params_at(root)  # every path absolute under root, as a flow has them
    managed_files = [
        root / "params.yaml",
        root / "dvc.lock",
        params.paths.warm_start,
        params.paths.data_pin,
        params.paths.metrics,
        params.paths.results_table,
    ]
    for path in [*managed_files, root / "src" / "pkg.py"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("before\n")
    env = git.identity_env(tmp_path)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "first")):
        subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
    managed = managed_paths(root, params)
    commit = git.head(root)
    assert git.revision(root, managed) == commit
    for path in managed_files:
        path.write_text("rewritten by the run\n")
    assert git.revision(root, managed) == commit  # not -dirty
    assert git.revision(root) == commit + "-dirty"  # without the managed paths it would be
    (root / "src" / "pkg.py").write_text("edited\n")
    assert git.revision(root, managed) == commit + "-dirty"
    assert git.revision(tmp_path / "nowhere", managed) == "unknown"

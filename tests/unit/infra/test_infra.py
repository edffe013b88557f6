"""The one git client and the one parser of DVC's output, against a real git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from retrain.infra import git
from retrain.infra.dvc import stage_started, stages_run


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


def test_old_import_paths_are_the_same_client():
    from retrain.prcheck import git as prcheck_git
    from retrain.registry import git as registry_git

    assert prcheck_git.GitError is registry_git.GitError is git.GitError
    assert prcheck_git.git is git.run  # the check's CompletedProcess-returning form
    assert registry_git.git is git.git and registry_git.show is prcheck_git.show is git.show


def test_running_stage_lines_are_parsed_once():
    output = (
        "Verifying data sources in stage: 'data.dvc'\n\n"
        "Running stage 'validate':\n> python -m retrain.stages.validate\n"
        "Stage 'prepare' didn't change, skipping\n"
        "Running stage 'train':\n> python -m retrain.stages.train\n"
        "Running stage 'my-stage@1':\n"
    )
    assert stages_run(output) == ["validate", "train", "my-stage@1"]
    assert stages_run(output.splitlines()) == stages_run(output)
    assert stage_started("Stage 'prepare' didn't change, skipping") is None

"""`retrain fetch`'s contract against a real DVC repository with a real (local) remote: the
workspace ends up holding exactly the pinned bytes, from disk, the remote or an offline
rebuild, or the command fails in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from retrain.data.pin import ensure_pinned_data, read_pin, workspace_hash
from retrain.errors import DataError
from retrain.testing import pipeline_env

pytestmark = pytest.mark.slow  # a few real `dvc` processes per test

PINNED = "id,x,y\n1,0.5,yes\n2,1.5,no\n"


def _dvc(root: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        env=pipeline_env(),
    )


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A git + DVC repository whose data/table.csv is pinned by data/table.csv.dvc, with a
    local default remote that does not hold it yet."""
    root, remote = tmp_path / "repo", tmp_path / "remote"
    (root / "data").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _dvc(root, "init", "-q")
    _dvc(root, "remote", "add", "-d", "store", str(remote))
    (root / "data" / "table.csv").write_text(PINNED)
    _dvc(root, "add", "-q", "data/table.csv")
    return root, root / "data" / "table.csv.dvc", remote


def _in_remote(remote: Path, md5: str) -> bool:
    return (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def test_read_pin_names_the_output_and_its_hash(repo):
    root, dvc_file, _ = repo
    pin = read_pin(dvc_file)
    assert pin.path == root / "data" / "table.csv"
    assert pin.md5 == workspace_hash(root, pin.path)
    with pytest.raises(DataError, match="not a DVC file with one output"):
        read_pin(root / "data" / "missing.dvc")


def test_data_on_disk_is_kept_and_pushed(repo):
    root, dvc_file, remote = repo
    md5 = read_pin(dvc_file).md5
    assert not _in_remote(remote, md5)
    said = ensure_pinned_data(root, dvc_file)
    assert "already present" in said and "pushed to the DVC remote" in said
    assert _in_remote(remote, md5)


def test_missing_data_is_pulled_then_rebuilt_then_refused(repo):
    root, dvc_file, remote = repo
    data = root / "data" / "table.csv"
    ensure_pinned_data(root, dvc_file)  # the remote now holds the pinned bytes
    data.unlink()
    assert "pulled from the DVC remote" in ensure_pinned_data(root, dvc_file)
    assert data.read_text() == PINNED

    # Not in the remote (nor the cache): the offline rebuild must produce the same bytes.
    data.unlink()
    for folder in (remote, root / ".dvc" / "cache"):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    said = ensure_pinned_data(root, dvc_file, rebuild=lambda: data.write_text(PINNED))
    assert "rebuilt offline" in said and data.read_text() == PINNED

    data.unlink()
    subprocess.run(["rm", "-rf", str(remote), str(root / ".dvc" / "cache")], check=True)
    with pytest.raises(DataError, match=r"does not match .* pinned in table\.csv\.dvc"):
        ensure_pinned_data(root, dvc_file, rebuild=lambda: data.write_text(PINNED + "3,2,no\n"))

    data.unlink()
    with pytest.raises(DataError, match="not found; `dvc pull` failed and no offline source"):
        ensure_pinned_data(root, dvc_file)


def test_changed_data_on_disk_is_refused(repo):
    root, dvc_file, _ = repo
    (root / "data" / "table.csv").write_text(PINNED.replace("yes", "no"))
    with pytest.raises(DataError, match="restore it with `dvc checkout`"):
        ensure_pinned_data(root, dvc_file)

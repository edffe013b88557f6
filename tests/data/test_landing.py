"""The landing protocol: only complete files are taken, each entry is handled on its own,
every row that lands is either stored or quarantined (0 lost), and DVC keeps both."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from retrain.config import load_params_at
from retrain.data.arrivals import ARRIVALS, in_arrival_order
from retrain.data.simulate import simulate
from retrain.hashing import file_md5
from retrain.ingest import (
    JOURNAL,
    MARKER,
    STAGING,
    IngestRun,
    ingest_landing,
    mark_landed,
    quarantine_pin,
)
from tests.conftest import (
    REPO,
    make_pipeline_repo,
    params_in,
    pipeline_env,
    telco_params_at,
    telco_schema,
)

pytestmark = pytest.mark.data


@pytest.fixture()
def params(tmp_path):
    # The repo's params with every output path under tmp_path: the real data/ is not touched.
    p = telco_params_at(REPO)
    paths = p.paths.model_copy(
        update={
            "landing": tmp_path / "landing",
            "batches": tmp_path / "raw" / "batches",
            "quarantine": tmp_path / "quarantine",
            "holdout": tmp_path / "holdout",
            "holdout_pin": tmp_path / "holdout.dvc",
        }
    )
    (tmp_path / "landing").mkdir()
    return p.model_copy(update={"paths": paths})


@pytest.fixture(scope="module")
def batches(raw_csv) -> list[pd.DataFrame]:
    return simulate(pd.read_csv(raw_csv), telco_schema(), n_batches=4, batch_size=200, seed=21)


def land_csv(params, name: str, df: pd.DataFrame, *, done: bool = True) -> Path:
    path = params.paths.landing / name
    df.to_csv(path, index=False)
    if done:
        mark_landed(path)
    return path


def land_bytes(params, name: str, data: bytes) -> Path:
    path = params.paths.landing / name
    path.write_bytes(data)
    mark_landed(path)
    return path


def rows_kept(params) -> int:
    """Data rows stored as accepted batches and in the pinned holdout, read back from disk."""
    folders = [f for f in (params.paths.batches, params.paths.holdout) if f.exists()]
    return sum(
        len(pd.read_csv(p)) if p.suffix == ".csv" else len(pd.read_parquet(p))
        for folder in folders
        for p in (in_arrival_order(folder) if folder == params.paths.batches else folder.iterdir())
    )


def rows_quarantined(params) -> int:
    """Data lines kept in quarantine (the bytes as landed; gzip files unpacked)."""
    total = 0
    if not params.paths.quarantine.exists():
        return 0
    for f in params.paths.quarantine.rglob("*"):
        if f.is_file() and f.name not in ("reason.txt", "report.json"):
            data = gzip.decompress(f.read_bytes()) if f.name.endswith(".gz") else f.read_bytes()
            total += data.count(b"\n") + (0 if data.endswith(b"\n") else 1) - 1
    return total


def by_name(run: IngestRun) -> dict[str, object]:
    return {Path(r.source).name: r for r in run.results}


def one_line(reason: str, name: str) -> None:
    assert "\n" not in reason and name in reason and len(reason) < 300, reason


SLOW_WRITER = textwrap.dedent(
    """
    import os, sys, time
    path, rows, done, hold = sys.argv[1], open(sys.argv[2]).read().splitlines(True), *sys.argv[3:]
    with open(path, "w") as fh:
        for i, line in enumerate(rows):
            fh.write(line)
            if i == 20:  # part of the file is written: wait (60 s at most) until released
                fh.flush()
                deadline = time.monotonic() + 60
                while not os.path.exists(hold) and time.monotonic() < deadline:
                    time.sleep(0.01)
    if done == "1":
        open(path + ".done", "w").close()
    """
)


def test_a_file_still_being_written_is_not_taken_then_a_real_copy_is(params, batches, tmp_path):
    source = tmp_path / "rows.csv"
    batches[0].to_csv(source, index=False)
    landed = params.paths.landing / "slow.csv"
    release = tmp_path / "release"
    # The writer stops half way until the ingest below has looked (a loaded machine's ingest
    # can take longer than any fixed pace of writing).
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(landed), str(source), "1", str(release)]
    )
    try:
        while not landed.exists() or landed.stat().st_size == 0:
            time.sleep(0.01)
        during = ingest_landing(params, version=False)
        assert writer.poll() is None, "the writer finished too fast to test anything"
    finally:
        release.touch()
        writer.wait(timeout=60)
    (result,) = during.results
    assert result.status == "pending" and "slow.csv.done" in result.reason
    assert landed.exists() and not params.paths.batches.exists()
    assert during.ok  # waiting is not a failure

    # The producer kept a handle open: what it writes after the ingest must not reach the store.
    handle = landed.open("a")
    after = ingest_landing(params, version=False)
    (result,) = after.results
    assert result.status == "accepted", result.reason
    stored = Path(result.destination)
    assert stored.stat().st_ino != os.fstat(handle.fileno()).st_ino
    handle.write("garbage,appended,late\n")
    handle.close()
    # What was stored (the rows to train on, and the held-out share) is the source's rows, in
    # full, and nothing the producer appended after the ingest.
    kept = [stored, *params.paths.holdout.glob(stored.name)]
    rows = pd.concat([pd.read_csv(f) for f in kept]).sort_values(params.dataset.id_column)
    expected = pd.read_csv(source).sort_values(params.dataset.id_column)
    pd.testing.assert_frame_equal(rows.reset_index(drop=True), expected.reset_index(drop=True))
    assert b"garbage" not in b"".join(f.read_bytes() for f in kept)
    assert result.rows == len(batches[0]) == rows_kept(params)
    assert not landed.exists() and not (params.paths.landing / f"slow.csv{MARKER}").exists()


@pytest.mark.parametrize("cut", ["mid_line", "short_line"])
def test_a_truncated_file_is_quarantined_with_one_line(params, batches, cut):
    data = batches[1].to_csv(index=False).encode()
    if cut == "mid_line":
        data = data[:-25]  # the last line lost its end and its line break
    else:
        last = data.rstrip(b"\n").rsplit(b"\n", 1)
        data = last[0] + b"\n" + last[1].split(b",", 5)[0] + b"\n"  # 1 field of 21, newline
    land_bytes(params, "cut.csv", data)
    run = ingest_landing(params, version=False)
    (result,) = run.results
    assert result.status == "rejected"
    one_line(result.reason, "cut.csv")
    assert ("no line break" if cut == "mid_line" else "fields, the header") in result.reason
    assert Path(result.destination).read_bytes() == data
    assert result.rows == len(batches[1]) == rows_quarantined(params)
    assert rows_kept(params) == 0 and not run.ok


def test_each_entry_is_handled_on_its_own(params, batches, tmp_path):
    good = land_csv(params, "a-good.csv", batches[0])
    (params.paths.landing / "b-dangling.csv").symlink_to(tmp_path / "gone.csv")
    (params.paths.landing / "c-folder.csv").mkdir()
    (params.paths.landing / "d-notes.txt").write_text("hello\n")
    mark_landed(params.paths.landing / "d-notes.txt")
    (params.paths.landing / f"e-orphan.csv{MARKER}").touch()
    land_csv(params, "f-good.csv", batches[1])
    run = ingest_landing(params, version=False)
    got = by_name(run)
    assert {n: r.status for n, r in got.items()} == {
        "a-good.csv": "accepted",
        "b-dangling.csv": "refused",
        "c-folder.csv": "skipped",
        "d-notes.txt": "skipped",
        f"e-orphan.csv{MARKER}": "skipped",
        "f-good.csv": "accepted",
    }
    for name, result in got.items():
        one_line(result.reason, name)
    assert "directory" in got["c-folder.csv"].reason
    assert "unsupported file type" in got["d-notes.txt"].reason
    assert not run.ok
    assert run.summary() == "ingest: 2 accepted, 1 refused, 3 skipped; nothing to push"
    assert not good.exists() and not (params.paths.landing / "b-dangling.csv").is_symlink()
    assert rows_kept(params) == len(batches[0]) + len(batches[1])


def test_links_are_refused_and_quarantine_keeps_no_link_and_no_outside_bytes(
    params, batches, tmp_path
):
    outside = tmp_path / "outside" / "secret.csv"
    outside.parent.mkdir()
    batches[2].to_csv(outside, index=False)  # a valid batch: only the link makes it wrong
    before = outside.read_bytes()
    link = params.paths.landing / "secret.csv"
    link.symlink_to(outside)
    mark_landed(link)
    run = ingest_landing(params, version=False)
    (result,) = run.results
    assert result.status == "refused" and str(outside) in result.reason
    one_line(result.reason, "secret.csv")
    assert outside.read_bytes() == before  # the target is untouched ...
    kept = list(params.paths.quarantine.rglob("*"))
    assert kept and not any(p.is_symlink() for p in kept)  # ... never linked ...
    first_row = before.splitlines()[1].decode()
    for p in kept:
        if p.is_file():
            assert first_row not in p.read_text()  # ... and never copied in
    assert not link.is_symlink() and rows_kept(params) == 0


def test_duplicates_are_decided_by_the_full_content_hash(params, batches):
    land_csv(params, "a.csv", batches[0])
    (accepted,) = ingest_landing(params, version=False).results
    assert accepted.status == "accepted"
    # Another stored file's name holds the next batch's md5 prefix: it is still ingested.
    nxt = params.paths.landing / "b.csv"
    batches[1].to_csv(nxt, index=False)
    prefix = file_md5(nxt)[:12]
    decoy = params.paths.batches / f"decoy-{prefix}.csv"
    batches[2].to_csv(decoy, index=False)
    mark_landed(nxt)
    (second,) = ingest_landing(params, version=False).results
    assert second.status == "accepted", second.reason
    # The same bytes under a new name, and gzipped, are duplicates of what is stored.
    land_bytes(params, "a-again.csv", Path(accepted.destination).read_bytes())
    land_bytes(params, "a-again.csv.gz", gzip.compress(Path(accepted.destination).read_bytes()))
    again = ingest_landing(params, version=False)
    assert [r.status for r in again.results] == ["duplicate", "duplicate"]
    assert all(accepted.destination in r.reason for r in again.results)
    assert again.ok
    stored = [p.name for p in in_arrival_order(params.paths.batches)]
    assert len(stored) == 3  # a, b and the decoy: nothing deleted, nothing stored twice


def test_upper_case_gzip_and_parquet_are_read_and_others_said(params, batches):
    land_csv(params, "UPPER.CSV", batches[0])
    land_bytes(params, "packed.csv.gz", gzip.compress(batches[1].to_csv(index=False).encode()))
    batches[2].to_parquet(params.paths.landing / "table.PQ", index=False)
    mark_landed(params.paths.landing / "table.PQ")
    whole = gzip.compress(batches[3].to_csv(index=False).encode())
    land_bytes(params, "broken.csv.gz", whole[: len(whole) // 2])
    land_bytes(params, "sheet.xlsx", b"PK\x03\x04")
    run = ingest_landing(params, version=False)
    got = by_name(run)
    assert {n: r.status for n, r in got.items()} == {
        "UPPER.CSV": "accepted",
        "packed.csv.gz": "accepted",
        "table.PQ": "accepted",
        "broken.csv.gz": "rejected",
        "sheet.xlsx": "skipped",
    }
    assert Path(got["packed.csv.gz"].destination).suffix == ".csv"  # stored unpacked
    assert Path(got["table.PQ"].destination).suffix == ".parquet"
    assert "not a complete gzip file" in got["broken.csv.gz"].reason
    one_line(got["sheet.xlsx"].reason, "sheet.xlsx")
    assert rows_kept(params) == sum(len(b) for b in batches[:3])
    kept = Path(got["broken.csv.gz"].destination)
    assert kept.read_bytes() == whole[: len(whole) // 2]  # the bytes as landed


def test_encoding_and_delimiter_problems_are_said_in_one_line(params, batches):
    latin = batches[0].astype({"payment_method": object})
    latin.loc[5, "payment_method"] = "Chèque"
    land_bytes(params, "latin.csv", latin.to_csv(index=False).encode("latin-1"))
    land_bytes(params, "semi.csv", batches[1].to_csv(index=False, sep=";").encode())
    got = by_name(ingest_landing(params, version=False))
    latin_r, semi_r = got["latin.csv"], got["semi.csv"]
    assert latin_r.status == semi_r.status == "rejected"
    one_line(latin_r.reason, "latin.csv")
    one_line(semi_r.reason, "semi.csv")
    assert "'payment_method'" in latin_r.reason and "line 7" in latin_r.reason
    assert "UTF-8" in latin_r.reason
    assert "';'" in semi_r.reason and "comma-separated" in semi_r.reason
    assert rows_quarantined(params) == len(batches[0]) + len(batches[1])


def test_the_pii_guard_runs_on_ingest(params, batches, raw_csv, tmp_path):
    # `contact` declared as a feature: only the PII guard can say what is wrong with it. The
    # pinned data has the column (else params.yaml is at fault: a config error, no rejection).
    dataset = params.dataset.model_copy(
        update={"categorical": [*params.dataset.categorical, "contact"]}
    )
    pinned = pd.read_csv(raw_csv)
    pinned.assign(contact=[f"branch {i % 7}" for i in range(len(pinned))]).to_csv(
        tmp_path / "pinned.csv", index=False
    )
    paths = params.paths.model_copy(update={"raw_data": tmp_path / "pinned.csv"})
    params = params.model_copy(update={"dataset": dataset, "paths": paths})
    df = batches[0].assign(contact=[f"person{i}@example.com" for i in range(len(batches[0]))])
    land_csv(params, "contacts.csv", df)
    (result,) = ingest_landing(params, version=False).results
    assert result.status == "rejected"
    one_line(result.reason, "contacts.csv")
    assert "column 'contact' looks like personal data" in result.reason
    assert "@example.com" not in result.reason
    assert rows_quarantined(params) == len(df)


KILLABLE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from retrain.ingest import ingest_landing
    from tests.conftest import params_in, telco_params

    params = params_in(Path(sys.argv[1]), telco_params())
    ingest_landing(params, version=False)
    """
)


def test_an_ingest_killed_midway_loses_nothing(tmp_path, default_params_raw, batches):
    params = params_in(tmp_path, default_params_raw)
    params.paths.landing.mkdir(parents=True)
    frames = [batches[0], batches[1].drop(columns=["tenure"]), batches[2], batches[3]]
    for i, df in enumerate(frames):
        land_csv(params, f"b{i}.csv", df)
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(tmp_path)], env=pipeline_env())
    placed = (params.paths.batches, params.paths.quarantine)
    while proc.poll() is None and not any(p.exists() and any(p.iterdir()) for p in placed):
        time.sleep(0.002)
    assert proc.poll() is None, "the ingest ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list(params.paths.landing.glob("b*.csv"))) > 1  # it was stopped midway
    rerun = ingest_landing(params, version=False)
    assert all(r.status != "pending" for r in rerun.results), rerun.results
    assert not list(params.paths.landing.glob("b*"))
    assert rows_kept(params) == len(batches[0]) + len(batches[2]) + len(batches[3])
    assert rows_quarantined(params) == len(batches[1])  # 0 lost
    assert not list((params.paths.landing / STAGING).glob("*/*"))  # the claims were undone


def test_a_killed_runs_half_written_arrival_record_is_removed_by_the_next(params):
    # The arrival order is rewritten through a temporary file beside it (retrain.files): a kill
    # between the write and the rename must not leave that file for data.dvc to pin.
    params.paths.batches.mkdir(parents=True)
    half = params.paths.batches / f".{ARRIVALS}.4242.0123abcd.tmp"
    half.write_text("zeta-0123456789ab.csv\n")
    kept = params.paths.batches / ARRIVALS
    kept.write_text("zeta-0123456789ab.csv\n")
    assert ingest_landing(params, version=False).ok
    assert not half.exists() and kept.exists()


# --- with a real git + DVC repository ---------------------------------------------------------


@pytest.fixture()
def repo(tmp_path, default_params_raw) -> Path:
    made = make_pipeline_repo(tmp_path / "repo", default_params_raw, tmp_path / "remote")
    (made / "data" / "landing").mkdir()
    return made


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retrain.cli", *args],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )


def run_in(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=repo, env=pipeline_env(), capture_output=True, text=True, check=check
    )


@pytest.mark.integration
def test_rejected_batches_survive_the_machine(repo, tmp_path, batches):
    p = load_params_at(repo)
    bad = batches[0].drop(columns=["tenure"])
    land_csv(p, "bad.csv", bad)
    land_csv(p, "good.csv", batches[1])
    # Taken before good.csv (the landing's name order), stored as good-z-<md5>.csv after
    # good-<md5>.csv in name order: the batch that arrived last is not the last name.
    land_csv(p, "good-z.csv", batches[2])
    landed = (p.paths.landing / "bad.csv").read_bytes()
    proc = cli(repo, "ingest")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one batch was rejected
    assert "Traceback" not in proc.stderr
    assert (
        proc.stdout.splitlines()[-1] == "ingest: 1 rejected, 2 accepted; pushed to the DVC remote"
    )
    # Issue 27: each good batch's held-out share is in the holdout, pinned by its own .dvc.
    for batch in batches[1:3]:
        n = len(batch)
        held = round(p.ingest.holdout_share * n)
        assert f"{n - held} rows to train on, {held} to the holdout" in proc.stdout
    held_files = sorted(p.paths.holdout.iterdir())
    assert [f.name for f in held_files] == sorted(
        b.name for b in in_arrival_order(p.paths.batches)
    )
    held_file = held_files[0]
    # The quarantine and holdout pins are committed (with the .gitignore DVC wrote), and both
    # sent with data.dvc: the checkout is clean but for data.dvc (the record's).
    status = run_in(repo, "git", "status", "--porcelain", "--untracked-files=no").stdout
    assert status.split() == ["M", "data.dvc"], status
    holdout_pin = p.paths.holdout_pin.relative_to(repo).as_posix()
    assert run_in(repo, "git", "log", "-1", "--format=%s", "--", holdout_pin).stdout.strip() == (
        f"ingest: holdout pinned ({holdout_pin})"
    )
    untracked = run_in(repo, "git", "status", "--porcelain").stdout
    assert holdout_pin not in untracked and "holdout" not in untracked, untracked
    cloud = run_in(repo, sys.executable, "-m", "dvc", "status", "--cloud", holdout_pin).stdout
    assert "in sync" in cloud, cloud
    identity = ["-c", "user.name=t", "-c", "user.email=t@t"]
    run_in(repo, "git", *identity, "commit", "-qm", "the batches", "data.dvc")  # as a record
    # A new machine: a fresh clone, the same remote, `dvc pull`.
    clone = tmp_path / "clone"
    run_in(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    run_in(
        clone,
        sys.executable,
        "-m",
        "dvc",
        "remote",
        "modify",
        "--local",
        "local",
        "url",
        str(tmp_path / "remote"),
    )
    run_in(
        clone, sys.executable, "-m", "dvc", "pull", "-q", str(quarantine_pin(p).relative_to(repo))
    )
    (kept,) = (clone / "data" / "quarantine").glob("bad-*/bad.csv")
    assert kept.read_bytes() == landed
    run_in(clone, sys.executable, "-m", "dvc", "pull", "-q", holdout_pin)
    pulled = clone / held_file.relative_to(repo)
    assert pulled.read_bytes() == held_file.read_bytes()
    assert "missing ['tenure']" in (kept.parent / "reason.txt").read_text()
    # The clone's drift stage judges the batch accepted last, as the monitor did.
    from retrain.stages.drift import newest_ingested

    run_in(clone, sys.executable, "-m", "dvc", "pull", "-q", "data.dvc")
    (last,) = [b for b in (clone / "data/raw/batches").glob("good-*") if "-z-" not in b.name]
    assert sorted((clone / "data/raw/batches").glob("good*"))[-1] != last
    assert newest_ingested(load_params_at(clone)) == last


@pytest.mark.integration
def test_a_failed_push_is_reported_and_retried_next_time(repo, batches, tmp_path):
    p = load_params_at(repo)
    remote = str(tmp_path / "remote")
    run_in(
        repo,
        sys.executable,
        "-m",
        "dvc",
        "remote",
        "modify",
        "--local",
        "local",
        "url",
        "/proc/no-such-remote",
    )
    land_csv(p, "good.csv", batches[2])
    (p.paths.landing / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    down = cli(repo, "ingest")
    assert down.returncode == 1 and "Traceback" not in down.stderr, down.stderr
    lines = down.stdout.splitlines()
    assert lines[0].startswith("refused   dangling.csv: a symbolic link")
    assert lines[1].startswith("accepted  good.csv:")
    assert lines[-1].startswith("ingest: 1 refused, 1 accepted; NOT pushed")
    assert "dvc push failed: ERROR" in lines[-1] and "/proc/no-such-remote" in lines[-1]
    assert all(len(line) < 400 for line in lines)
    assert (p.paths.landing / STAGING / JOURNAL).exists()
    stored = next(p.paths.batches.glob("good-*.csv"))  # committed in the workspace, not lost

    run_in(
        repo, sys.executable, "-m", "dvc", "remote", "modify", "--local", "local", "url", remote
    )
    up = ingest_landing(p)  # the next run (in this process: no start-up cost)
    assert up.ok and up.summary() == (
        "ingest: no landed file; pushed to the DVC remote (with an earlier run's)"
    )
    assert not (p.paths.landing / STAGING / JOURNAL).exists()
    cloud = run_in(repo, sys.executable, "-m", "dvc", "status", "--cloud", "data.dvc")
    assert "in sync" in cloud.stdout, cloud.stdout
    assert stored.exists()

"""Bad-input suite, the DuckDB file: every kind of wrong `--db` path and every fault gives one line naming
the path and the cause (exit code 2, no traceback), or is handled (an older schema migrated, a stale
lock marker taken over, a reader held open across a publish). Real files, real processes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from test_publish import publish_sample
from typer.testing import CliRunner

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.cli import app
from sipas_pipeline.duckdb_file import (
    NEXT,
    SCHEMA_VERSION,
    connect,
    declared_columns,
    lock_path,
    migration_plan,
)
from sipas_pipeline.errors import DatabaseLocked
from sipas_pipeline.publish import read_query as query

ROOT = Path(__file__).resolve().parents[1]
SIPAS = Path(sys.executable).with_name("sipas")


def sipas(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The `sipas` command line run in this process from the test's folder (Prefect's home and the data folder
    inside it), as (exit code, stdout, stderr); an exception that escaped the command is its traceback on
    stderr. Every refusal here happens before Prefect; other programs holding the file are real processes."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))
        env.setenv("SIPAS_DATA", str(tmp_path / "data"))
        env.chdir(tmp_path)
        done = CliRunner().invoke(app, list(args))
    stderr = done.stderr
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        stderr += "".join(traceback.format_exception(done.exception))
    return subprocess.CompletedProcess(["sipas", *args], done.exit_code, done.stdout, stderr)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a failed command (exit code 2, no traceback, nothing else on stderr)."""
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0].removeprefix("error: ")


def run_into(tmp_path: Path, db: Path, sample_year: Path) -> str:
    """`sipas run` of the sample year into `db`, expected to stop before the stages with one line."""
    return one_line_error(sipas(tmp_path, "run", "--year", "2024", "--raw", str(sample_year), "--db", str(db)))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def published(tmp_path_factory, methodology, sample_work) -> Path:
    """A DuckDB file with one published run of the sample year (copied by each test that changes it)."""
    db = tmp_path_factory.mktemp("published") / "sipas.duckdb"
    publish_sample(db, methodology, sample_work, "run-a")
    return db


def execute(db: Path, *statements: str) -> Path:
    """Run SQL statements on `db` (as another program would) and close it."""
    con = connect(db)
    for sql in statements:
        con.execute(sql)
    con.close()
    return db


def refused(db: Path, why: str) -> str:
    """The line for a file whose schema cannot be migrated."""
    return f"{db}: its schema cannot be migrated ({why}): publish into a new --db file; this one stays readable as it is"


def copy_of(published: Path, folder: Path, name: str = "sipas.duckdb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(published, folder / name)
    return folder / name


# --- paths that are not a DuckDB file -----------------------------------------------------------------------------

@pytest.mark.integration
def test_text_file(tmp_path, sample_year):
    db = tmp_path / "notes.txt"
    db.write_text("kết quả năm 2024\n", encoding="utf-8")
    assert run_into(tmp_path, db, sample_year) == (
        f"{db}: is not a DuckDB file: give another --db (this file is left as it is)")
    assert db.read_text(encoding="utf-8") == "kết quả năm 2024\n"


@pytest.mark.integration
def test_folder(tmp_path, sample_year):
    db = tmp_path / "results"
    db.mkdir()
    assert run_into(tmp_path, db, sample_year) == f"{db}: is a folder, not a DuckDB file: give a file path with --db"
    assert one_line_error(sipas(tmp_path, "runs", "list", "--db", str(db))) == (
        f"{db}: is a folder, not a DuckDB file: give a file path with --db")


@pytest.mark.integration
def test_sqlite_file_never_loads_an_extension(tmp_path, sample_year):
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE runs (run_id TEXT)")
    con.commit()
    con.close()
    expected = f"{db}: is a SQLite database, not a DuckDB file: give another --db (this file is left as it is)"
    assert run_into(tmp_path, db, sample_year) == expected
    assert one_line_error(sipas(tmp_path, "runs", "list", "--db", str(db))) == expected
    # a connection of the project refuses to install or auto-load any extension
    con = connect(":memory:")
    assert con.execute("SELECT current_setting('autoinstall_known_extensions'), "
                       "current_setting('autoload_known_extensions')").fetchall() == [(False, False)]
    con.close()


@pytest.mark.integration
def test_empty_file(tmp_path, sample_year):
    db = tmp_path / "sipas.duckdb"
    db.touch()
    assert run_into(tmp_path, db, sample_year) == (
        f"{db}: is an empty file, not a DuckDB file: give another --db (this file is left as it is)")
    assert db.stat().st_size == 0


@pytest.mark.integration
def test_damaged_file(tmp_path, published):
    db = copy_of(published, tmp_path)
    data = bytearray(db.read_bytes())
    data[20000:30000] = bytes(10000)  # a block's content no longer matches its checksum
    db.write_bytes(bytes(data))
    line = one_line_error(sipas(tmp_path, "runs", "list", "--db", str(db)))
    assert re.fullmatch(re.escape(f"{db}: is a damaged DuckDB file (Corrupt database file: computed checksum ")
                        + r"\d+ does not match stored checksum \d+ in block at location \d+"
                        + re.escape("): nothing was written to it; restore it from a backup or publish into another "
                                    "--db"), line), line


@pytest.mark.integration
def test_truncated_file(tmp_path, published, sample_year):
    db = copy_of(published, tmp_path)
    db.write_bytes(db.read_bytes()[:5000])
    assert run_into(tmp_path, db, sample_year) == (
        f'{db}: is a damaged DuckDB file (Could not read enough bytes from file "{db}": attempted to read 3192 bytes '
        "from location 5000): nothing was written to it; restore it from a backup or publish into another --db")


@pytest.mark.integration
def test_duckdb_file_of_another_program(tmp_path, sample_year):
    db = execute(tmp_path / "other.duckdb", "CREATE TABLE sales (id INTEGER)")
    before = sha(db)
    assert run_into(tmp_path, db, sample_year) == refused(
        db, "it is a DuckDB file without sipas-pipeline results (tables sales)")
    assert one_line_error(sipas(tmp_path, "runs", "list", "--db", str(db))) == (
        f"{db}: holds no sipas-pipeline results (Catalog Error: Table with name runs does not exist!)")
    assert sha(db) == before


# --- permissions and space ------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_read_only_file(tmp_path, published, sample_year):
    db = copy_of(published, tmp_path)
    db.chmod(0o444)
    assert run_into(tmp_path, db, sample_year) == (
        f"{db}: the file is read-only: make it writable (chmod u+w) or publish into another --db")
    # reading it is fine
    proc = sipas(tmp_path, "runs", "list", "--db", str(db), "--json")
    assert proc.returncode == 0 and [r["run_id"] for r in json.loads(proc.stdout)] == ["run-a"]


@pytest.mark.integration
def test_read_only_folder(tmp_path, published, sample_year):
    folder = tmp_path / "shared"
    db = copy_of(published, folder)
    folder.chmod(0o555)
    try:
        assert run_into(tmp_path, db, sample_year) == (
            f"{db}: cannot write in {folder} (permission denied): the next database file is built beside the current "
            "one; publish into a folder you can write (--db)")
    finally:
        folder.chmod(0o755)


@pytest.mark.integration
def test_read_only_file_system(tmp_path, published, sample_year):
    """A real EROFS: the file on a tmpfs remounted read-only in a private mount namespace."""
    disk = tmp_path / "disk"
    disk.mkdir()
    db = disk / "sipas.duckdb"
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / ".prefect"))
    script = (f"mount -t tmpfs tmpfs {disk} && cp {published} {db} && mount -o remount,ro {disk} && "
              f"{SIPAS} run --year 2024 --raw {sample_year} --db {db}")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert one_line_error(proc) == (
        f"{db}: cannot write in {disk} (read-only file system): publish into a writable folder (--db)")


FULL_DISK = """
import json, sys
from collections.abc import Iterator
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_publish import publish_sample
from sipas_pipeline.errors import DatabaseError
from sipas_pipeline.methodology import load_methodology
work = json.loads(Path({state!r}).read_text())
work["work"] = Path(work["work"])
try:
    publish_sample(Path({db!r}), load_methodology(2024), work, "run-full")
except DatabaseError as exc:
    print(exc)
"""


@pytest.mark.integration
def test_full_disk(tmp_path, published, sample_work):
    """A real ENOSPC: a tiny tmpfs mounted in a private mount namespace holds the file; the next file
    cannot be written there. The line names the true cause; the current file is untouched, nothing left."""
    disk = tmp_path / "disk"
    disk.mkdir()
    state = tmp_path / "state.json"
    state.write_text(json.dumps({k: (str(v) if k == "work" else v.as_dict()) for k, v in sample_work.items()}))
    size_kb = published.stat().st_size // 1024 + 256  # room for the current file, not for its copy
    db = disk / "sipas.duckdb"
    script = (f"mount -t tmpfs -o size={size_kb}k tmpfs {disk} && cp {published} {db} && sha256sum {db} && "
              f"{sys.executable} -c \"$CODE\" && sha256sum {db} && ls {disk}")
    code = FULL_DISK.format(tests=str(ROOT / "tests"), state=str(state), db=str(db))
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=dict(os.environ, CODE=code), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, line, after, *listing = proc.stdout.splitlines()
    assert "Traceback" not in proc.stderr
    assert line == (f"{db}: cannot write the next database file beside it: no space left on device; free space there "
                    "or publish into another --db")
    assert before == after  # the current file is as it was
    assert listing == ["sipas.duckdb", "sipas.duckdb.lock"]  # the next file was removed


# --- schema versions ------------------------------------------------------------------------------------------------

def test_migration_plan_adds_nullable_columns_and_refuses_the_rest():
    want = {"t": {"a": ("VARCHAR", False), "b": ("DOUBLE", True), "c": ("BIGINT", False)}, "runs": {}}
    have = {"t": {"a": ("VARCHAR", False)}, "runs": {}}
    assert migration_plan(have, want, 1) == (
        [("add", "t", "b", "DOUBLE")], ["t.c is new and may not be null"])
    # a column the file holds as NOT NULL that the schema now lets be null is relaxed, not refused
    relaxed = {"t": {"a": ("VARCHAR", False), "b": ("DOUBLE", False), "c": ("BIGINT", False)}, "runs": {}}
    assert migration_plan(relaxed, want, 1) == ([("relax", "t", "b", "DOUBLE")], [])
    assert migration_plan({"t": {"a": ("INTEGER", False), "b": ("DOUBLE", True), "c": ("BIGINT", False)}, "runs": {}},
                          want, 2) == ([], ["t.a is INTEGER in the file, VARCHAR now"])
    assert migration_plan({"t": want["t"] | {"x": ("DATE", False)}, "runs": {}}, want, 2) == (
        [], ["t.x (DATE, not null) is no longer declared"])
    assert migration_plan(want, want, SCHEMA_VERSION + 1)[1] == [
        f"written by a newer sipas-pipeline (schema version {SCHEMA_VERSION + 1}; this one writes {SCHEMA_VERSION})"]
    assert migration_plan({}, want, None) == ([], [])  # a new file: everything is created
    # what tables.sql declares is read from the file itself (a column another change adds migrates alone)
    declared = declared_columns()
    assert declared["schema_info"]["version"] == ("INTEGER", False)
    assert declared["indicator_values"]["se"] == ("DOUBLE", True)


@pytest.mark.integration
def test_older_schema_is_migrated(tmp_path, published, methodology, sample_work):
    """A file of schema version 1 (no schema_info, a nullable column that came later) is migrated by the next
    publish, which records it; the old run keeps its rows."""
    db = execute(copy_of(published, tmp_path), "DROP TABLE schema_info",
                 "DROP VIEW current_indicator_values",  # views are recreated on every publish
                 "ALTER TABLE indicator_values DROP COLUMN se")
    proc = sipas(tmp_path, "runs", "list", "--db", str(db), "--json")  # readers can read an older file as it is
    assert proc.returncode == 0 and [r["run_id"] for r in json.loads(proc.stdout)] == ["run-a"]
    out = publish_sample(db, methodology, sample_work, "run-b")
    assert out["notes"] == [f"{db}: migrated from schema version 1, added indicator_values.se"]
    assert query(db, "SELECT version, run_id, change FROM schema_info") == [
        (SCHEMA_VERSION, "run-b", "migrated from schema version 1, added indicator_values.se")]
    with_se = pl.read_parquet(StageFolder(sample_work["work"]).result("indicator_values"))["se"].count()
    assert with_se > 0
    assert query(db, "SELECT run_id, count(*), count(se) FROM indicator_values GROUP BY 1 ORDER BY 1") == [
        ("run-a", 7210, 0), ("run-b", 7210, with_se)]
    assert query(db, "SELECT run_id FROM current_runs") == [("run-b",)]
    assert query(db, "SELECT count(*) FROM duckdb_columns() WHERE comment IS NULL AND NOT internal") == [(0,)]


@pytest.mark.integration
def test_schema_is_reapplied_only_when_the_file_differs(tmp_path, published, methodology, sample_work, monkeypatch):
    """A publish re-applies the schema files (tables, views, every comment) only when the file does not hold exactly
    what they made when last applied: the usual publish rewrites none; a view dropped or a comment changed by
    another program is put back by the next publish."""
    from sipas_pipeline import publish as publishing

    applied, real = [], publishing.ensure_schema
    monkeypatch.setattr(publishing, "ensure_schema", lambda con: (applied.append(1), real(con)))
    db = copy_of(published, tmp_path)
    publish_sample(db, methodology, sample_work, "run-b")
    assert applied == []  # the file is as the schema files made it
    execute(db, "DROP VIEW current_ranks", "COMMENT ON TABLE runs IS 'changed by hand'")
    publish_sample(db, methodology, sample_work, "run-c")
    assert applied == [1]
    assert query(db, "SELECT count(*) FROM current_ranks") == query(db, "SELECT count(*) FROM ranks WHERE run_id = 'run-c'")
    assert query(db, "SELECT comment FROM duckdb_tables() WHERE table_name = 'runs'")[0][0] != "changed by hand"
    publish_sample(db, methodology, sample_work, "run-d")
    assert applied == [1]  # and it holds what they made again


@pytest.mark.integration
def test_schema_that_cannot_be_migrated_is_refused(tmp_path, published, sample_year):
    db = execute(copy_of(published, tmp_path), "ALTER TABLE corrections ALTER COLUMN requested_at TYPE VARCHAR")
    before = sha(db)
    assert run_into(tmp_path, db, sample_year) == refused(db, "corrections.requested_at is VARCHAR in the file, DATE now")
    assert sha(db) == before


@pytest.mark.integration
def test_newer_schema_is_refused(tmp_path, published, sample_year):
    db = execute(copy_of(published, tmp_path), "INSERT INTO schema_info (version, applied_at, run_id, change) "
                                                       "VALUES (99, now(), 'run-z', 'a future change')")
    assert run_into(tmp_path, db, sample_year) == refused(
        db, f"written by a newer sipas-pipeline (schema version 99; this one writes {SCHEMA_VERSION})")


# --- writers and readers --------------------------------------------------------------------------------------------

HOLD = """
import sys, time
from collections.abc import Iterator
from pathlib import Path
from sipas_pipeline.duckdb_file import {what}
{how}
print("held", flush=True)
sys.stdin.readline()
"""


def hold(what: str, how: str) -> subprocess.Popen:
    """A process that does `how` and keeps it until its stdin gets a line."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(what=what, how=textwrap.dedent(how))], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(timeout=60)


@pytest.mark.integration
def test_live_second_writer_fails_at_once(tmp_path, published, methodology, sample_work):
    db = copy_of(published, tmp_path)
    writer = hold("writer_lock", f"""
        lock = writer_lock(Path({str(db)!r}), "run-first", 2024)
        lock.__enter__()""")
    try:
        since = json.loads(lock_path(db).read_text())["since"]
        t0 = time.monotonic()
        with pytest.raises(DatabaseLocked) as exc:
            publish_sample(db, methodology, sample_work, "run-second")
        assert time.monotonic() - t0 < 30  # at once: no waiting for the lock
        assert str(exc.value) == (f"{db}: being published by run run-first (year 2024, PID {writer.pid}, since {since}); "
                                  "nothing was written: run again when it has finished")
    finally:
        release(writer)
    assert query(db, "SELECT run_id FROM runs") == [("run-a",)]
    assert list(tmp_path.glob(f"sipas.duckdb{NEXT}*")) == []


@pytest.mark.integration
def test_stale_lock_marker_is_taken_over(tmp_path, published, methodology, sample_work):
    db = copy_of(published, tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    lock_path(db).write_text(json.dumps({"run_id": "run-dead", "year": 2024, "pid": pid, "since": "2025-03-01T02:00:00"}))
    leftover = db.with_name(f"sipas.duckdb{NEXT}run-dead")
    leftover.write_bytes(b"half a file")
    out = publish_sample(db, methodology, sample_work, "run-b")
    assert out["notes"] == [
        f"{lock_path(db)}: took over the marker of run run-dead (PID {pid}, no longer running), which stopped while "
        "publishing; the current file was left as it was",
        f"removed sipas.duckdb{NEXT}run-dead, left by a run that stopped while publishing"]
    assert not leftover.exists() and lock_path(db).read_text() == ""
    assert query(db, "SELECT run_id FROM current_runs") == [("run-b",)]


@pytest.mark.integration
def test_another_program_writing_the_file(tmp_path, published, sample_year):
    """A program (not a run) holding the file open for writing: one line naming its PID, for readers and runs."""
    db = copy_of(published, tmp_path)
    other = hold("connect", f"con = connect(Path({str(db)!r}))")
    try:
        line = one_line_error(sipas(tmp_path, "runs", "list", "--db", str(db)))
        assert re.fullmatch(re.escape(f"{db}: open for writing in ") + r"\S*python\S* "
                            + re.escape(f"(PID {other.pid}); nothing was written: close it there and run again "
                                        "(analysts: open the file with read_only=True)"), line), line
        assert run_into(tmp_path, db, sample_year) == line
    finally:
        release(other)


READER = """
import sys
from sipas_pipeline.duckdb_file import connect
con = connect(sys.argv[1], read_only=True)
ask = "SELECT run_id FROM current_runs"
print(con.execute(ask).fetchall()[0][0], flush=True)
sys.stdin.readline()
print(con.execute(ask).fetchall()[0][0], con.execute("SELECT count(*) FROM runs").fetchall()[0][0], flush=True)
"""


def reader(db: Path) -> subprocess.Popen:
    """An analyst's process holding a read-only connection to `db`; it answers once now, once on a line."""
    return subprocess.Popen([sys.executable, "-c", READER, str(db)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ask_again(proc: subprocess.Popen) -> str:
    out, err = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0, err
    return out.strip()


@contextlib.contextmanager
def held_by_an_analyst(db: Path) -> Iterator[None]:
    """`db` (one published run, run-a) held open by an analyst's read-only process for the block; afterwards that
    process still sees its snapshot: run-a, one run."""
    analyst = reader(db)
    try:
        assert analyst.stdout.readline().strip() == "run-a"
        yield
    finally:
        answer = ask_again(analyst)
    assert answer == "run-a 1"


@pytest.mark.integration
def test_reader_held_open_does_not_block_a_publish(tmp_path, published, methodology, sample_work):
    db = copy_of(published, tmp_path)
    with held_by_an_analyst(db):
        out = publish_sample(db, methodology, sample_work, "run-b")
        assert out["results_hash"] == sample_work["summary"]["results_hash"]
        # the reader keeps its snapshot; a new connection sees the new run
        assert query(db, "SELECT run_id FROM current_runs") == [("run-b",)]


@pytest.mark.integration
def test_reader_held_open_across_a_real_flow_run(prefect_harness, tmp_path, published, sample_year, sample_flow_work):
    from sipas_pipeline.orchestration import annual_run

    db = copy_of(published, tmp_path)
    shutil.copytree(sample_flow_work, tmp_path / "work")  # the stages served from their manifests: the publish is the point
    with held_by_an_analyst(db):
        result = annual_run(year=2024, raw=str(sample_year), db=str(db), work=str(tmp_path / "work"), report=False)
        assert result["status"] == "published"
        assert query(db, "SELECT run_id FROM current_runs") == [(result["run_id"],)]
        assert query(db, "SELECT results_hash FROM current_runs") == [(result["results_hash"],)]


@pytest.mark.integration
def test_failed_flow_run_state_message_is_the_line(prefect_harness, tmp_path, sample_year):
    """Under the Prefect server (a deployment's run), the failed flow run's state message is that same line."""
    from prefect import get_client

    from sipas_pipeline.orchestration import annual_run

    db = tmp_path / "notes.txt"
    db.write_text("not a database\n", encoding="utf-8")
    state = annual_run(year=2024, raw=str(sample_year), db=str(db), work=str(tmp_path / "work"), return_state=True)
    line = f"{db}: is not a DuckDB file: give another --db (this file is left as it is)"
    assert state.is_failed() and state.message == line
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(state.state_details.flow_run_id).state.message == line
    assert db.read_text(encoding="utf-8") == "not a database\n" and not (tmp_path / "work").exists()

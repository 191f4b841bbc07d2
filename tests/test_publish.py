"""Publish into a real DuckDB file: tables, views, comments, one transaction, the writer lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline.duckdb_file import NEXT, lock_path, writer_lock
from sipas_pipeline.publish import DatabaseLocked, publish
from sipas_pipeline.publish import read_query as query
from sipas_pipeline.stages import read_quarantine, read_results, run_inputs

pytestmark = pytest.mark.integration  # DuckDB files and a publishing subprocess

ROOT = Path(__file__).resolve().parents[1]


def make_run(run_id: str, sample_work: dict) -> dict:
    checked = sample_work["checked"]
    return {"run_id": run_id, "started_at": datetime.now(UTC), "parameters": {"test": True},
            "code_version": "test", "inputs": run_inputs(sample_work["ingested"], checked),
            "accounting": [{"source": s} | c | {"unreadable_files": 0} for s, c in checked["sources"].items()],
            "timings": [{"stage": "compute", "seconds": 0.1}]}


def publish_sample(db: Path, methodology, sample_work: dict, run_id: str, **kw) -> dict:
    work = sample_work["work"]
    return publish(db, methodology, make_run(run_id, sample_work), read_results(work), read_quarantine(work), **kw)


def test_publish_tables_views_and_comments(tmp_path, methodology, sample_work, sample_year):
    db = tmp_path / "r.duckdb"
    out = publish_sample(db, methodology, sample_work, "run-a")
    assert out["rows"]["indicator_values"] == 63 * 103 + 6 * 103 + 103
    assert query(db, "SELECT count(*) FROM current_indicator_values WHERE unit_level = 'province'") == [(63 * 103,)]
    assert query(db, "SELECT count(DISTINCT indicator_id) FROM current_indicator_values") == [(103,)]
    # the SIPAS tree at every level, labelled; PAR with ranks and groups
    levels = dict(query(db, "SELECT level, count(*) FROM current_sipas_indices WHERE unit_level = 'province' GROUP BY 1"))
    assert levels == {"element": 63 * 14, "part": 63 * 2, "sipas": 63}
    assert query(db, "SELECT count(*) FROM current_sipas_indices WHERE label_vi IS NULL") == [(0,)]
    par = query(db, "SELECT count(*), count(DISTINCT rank_national), min(rank_national) FROM current_par_index "
                     "WHERE unit_level = 'province'")
    assert par[0][0] == 63 and par[0][2] == 1
    assert query(db, "SELECT count(*) FROM current_par_index WHERE unit_level = 'province' "
                     "AND par_group NOT IN ('A','B','C','D','E')") == [(0,)]
    # PAR points: every province has its 88 sub-criteria, 38 criteria and 8 fields, each level holding the
    # methodology's 100 points (68 appraisal + 32 survey), and the appraisal points are those appraised in the
    # raw export, summed here straight from the workbook (not the self-assessed ones)
    shape = query(db, """SELECT level, count(*), count(DISTINCT unit_code), round(sum(max_points), 6) FROM current_par_points
                         WHERE unit_level = 'province' GROUP BY 1 ORDER BY 1""")
    assert shape == [("criterion", 63 * 38, 63, 6300.0), ("field", 63 * 8, 63, 6300.0), ("subcriterion", 63 * 88, 63, 6300.0)]
    export = pl.read_excel(sample_year / "appraisal" / "par2024_appraisal_export.xlsx", read_options={"dtypes": "string"})
    appraised = dict(export.group_by("Mã tỉnh").agg(pl.col("Điểm thẩm định").cast(pl.Float64).sum()).iter_rows())
    published = dict(query(db, "SELECT unit_code, appraisal_points FROM current_par_index WHERE unit_level = 'province'"))
    assert len(published) == 63 and published == pytest.approx(appraised, abs=1e-9)
    # the quarantine: one row per reason, every quarantined row present
    q = sample_work["checked"]["sources"]
    rows = query(db, "SELECT source, count(DISTINCT source_file || ':' || source_row) FROM current_quarantine GROUP BY 1")
    assert dict(rows) == {s: c["quarantined"] for s, c in q.items() if c["quarantined"]}
    # Vietnamese names intact
    assert ("Thừa Thiên Huế",) in query(db, "SELECT name_vi FROM units WHERE unit_level = 'province'")
    # every table, view and column carries a comment
    assert query(db, "SELECT table_name FROM duckdb_tables() WHERE comment IS NULL") == []
    assert query(db, "SELECT view_name FROM duckdb_views() WHERE NOT internal AND comment IS NULL") == []
    missing = query(db, """SELECT c.table_name, c.column_name FROM duckdb_columns() c
                           WHERE c.comment IS NULL AND NOT c.internal AND c.schema_name = 'main'""")
    assert missing == []


def test_second_run_becomes_current_and_first_stays_queryable(tmp_path, methodology, sample_work):
    db = tmp_path / "r.duckdb"
    publish_sample(db, methodology, sample_work, "run-a")
    time.sleep(0.01)
    publish_sample(db, methodology, sample_work, "run-b")
    assert query(db, "SELECT run_id FROM current_runs") == [("run-b",)]
    assert query(db, "SELECT DISTINCT run_id FROM current_ranks") == [("run-b",)]
    assert query(db, "SELECT run_id, count(*) FROM ranks GROUP BY 1 ORDER BY 1") == [("run-a", 252), ("run-b", 252)]
    # comments survive the views being replaced
    assert query(db, "SELECT count(*) FROM duckdb_views() WHERE NOT internal AND comment IS NULL") == [(0,)]
    # run record: accounting per source holds, inputs with hashes
    acc = query(db, "SELECT a.source, a.read, a.valid, a.quarantined FROM (SELECT unnest(accounting) a FROM runs "
                    "WHERE run_id = 'run-b')")
    assert all(r == v + q for _, r, v, q in acc) and len(acc) == 3
    assert query(db, "SELECT count(*) FROM (SELECT unnest(inputs) i FROM runs WHERE run_id = 'run-b') "
                     "WHERE length(i.sha256) = 64") == [(65,)]


def test_failed_publish_rolls_back_and_previous_run_stays_current(tmp_path, methodology, sample_work):
    db = tmp_path / "r.duckdb"
    publish_sample(db, methodology, sample_work, "run-a")

    def boom() -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        publish_sample(db, methodology, sample_work, "run-b", before_commit=boom)
    assert query(db, "SELECT run_id FROM current_runs") == [("run-a",)]
    for table in ("runs", "indicator_values", "sipas_indices", "par_points", "par_totals", "ranks", "quarantine"):
        assert query(db, f"SELECT count(*) FROM {table} WHERE run_id = 'run-b'") == [(0,)], table


HANG = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_publish import publish_sample
from sipas_pipeline.methodology import load_methodology
import polars as pl

work = json.loads(Path({state!r}).read_text())
work["work"] = Path(work["work"])
def hang():
    Path({marker!r}).write_text("in transaction")
    time.sleep(120)
publish_sample(Path({db!r}), load_methodology(2024), work, "run-killed", before_commit=hang)
"""


def test_killed_mid_publish_leaves_previous_run_current(tmp_path, methodology, sample_work):
    """A reader is not blocked during a publish (it sees the previous run); a second writer fails at once
    naming the run and PID; a killed publisher leaves the current file as it was and a next file that the
    following run removes, taking over the stale marker with a note."""
    db = tmp_path / "r.duckdb"
    publish_sample(db, methodology, sample_work, "run-a")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({k: (str(v) if k == "work" else v.as_dict()) for k, v in sample_work.items()}))
    marker = tmp_path / "marker"
    code = HANG.format(tests=str(ROOT / "tests"), state=str(state), marker=str(marker), db=str(db))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "publisher never reached its transaction"
            time.sleep(0.05)
        # a reader opens the current file while the run publishes, and sees the previous run
        assert query(db, "SELECT run_id FROM current_runs") == [("run-a",)]
        # a second writer fails at once, naming the run and the PID that holds the lock
        with pytest.raises(DatabaseLocked) as exc, writer_lock(db, "run-second", 2024):
            pass
        assert str(exc.value) == (f"{db}: being published by run run-killed (year 2024, PID {proc.pid}, since "
                                  f"{json.loads(lock_path(db).read_text())['since']}); nothing was written: "
                                  "run again when it has finished")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the killed run left its next file beside the current one; the current file is untouched
    assert [p.name for p in tmp_path.glob(f"r.duckdb{NEXT}*")] == [f"r.duckdb{NEXT}run-killed"]
    assert query(db, "SELECT run_id FROM current_runs") == [("run-a",)]
    assert query(db, "SELECT count(*) FROM indicator_values WHERE run_id = 'run-killed'") == [(0,)]
    assert query(db, "SELECT count(*) FROM runs") == [(1,)]
    # the next publish works, removes the leftover and says it took over the dead run's marker
    out = publish_sample(db, methodology, sample_work, "run-c")
    assert query(db, "SELECT run_id FROM current_runs") == [("run-c",)]
    assert list(tmp_path.glob(f"r.duckdb{NEXT}*")) == []
    assert out["notes"] == [f"{lock_path(db)}: took over the marker of run run-killed (PID {proc.pid}, no longer running), "
                            "which stopped while publishing; the current file was left as it was",
                            f"removed r.duckdb{NEXT}run-killed, left by a run that stopped while publishing"]
    assert lock_path(db).read_text() == ""

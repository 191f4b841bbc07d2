"""The real Prefect flow on the committed sample year, into a real DuckDB file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sipas_pipeline.publish import read_query as query

pytestmark = pytest.mark.integration  # real Prefect flow runs and DuckDB files


@pytest.fixture(scope="module")
def flow_run(prefect_harness, sample_year, tmp_path_factory) -> dict:
    from sipas_pipeline.orchestration import annual_run

    tmp = tmp_path_factory.mktemp("flow")
    result = annual_run(year=2024, raw=str(sample_year), db=str(tmp / "sipas.duckdb"), work=str(tmp / "work"))
    return result.as_dict() | {"tmp": tmp}


def test_flow_publishes_the_year(flow_run, sample_work):
    db = Path(flow_run["db"])
    assert flow_run["status"] == "published"
    assert query(db, "SELECT run_id, status FROM current_runs") == [(flow_run["run_id"], "published")]
    assert query(db, "SELECT count(*) FROM current_indicator_values WHERE unit_level = 'province'") == [(63 * 103,)]
    assert query(db, "SELECT count(*) FROM current_sipas_indices WHERE level = 'sipas' AND unit_level = 'province'") == [(63,)]
    assert query(db, "SELECT count(*), count(par_group) FROM current_par_index WHERE unit_level = 'province'") == [(63, 63)]
    # the flow gives the same results as the stages called directly
    assert flow_run["results_hash"] == sample_work["summary"]["results_hash"]
    assert flow_run["national"] == sample_work["summary"]["national"]


def test_runs_table_holds_accounting_inputs_timings(flow_run, sample_work):
    db = Path(flow_run["db"])
    (params, flow_run_id, mhash), = query(db, "SELECT parameters, flow_run_id, methodology_hash FROM runs")
    assert json.loads(params)["year"] == 2024 and flow_run_id == flow_run["flow_run_id"] and len(mhash) == 64
    assert json.loads(params)["design"]["rank_seed"] == 2024  # the rank simulation's seed is on record
    acc = {r[0]: r[1:] for r in query(db, "SELECT a.source, a.read, a.valid, a.quarantined FROM "
                                          "(SELECT unnest(accounting) a FROM current_runs)")}
    expected = sample_work["checked"]["sources"]
    assert acc == {s: (c["read"], c["valid"], c["quarantined"]) for s, c in expected.items()}
    assert all(r == v + q for r, v, q in acc.values())
    per_file = query(db, "SELECT sum(i.read), sum(i.valid) + sum(i.quarantined) FROM "
                         "(SELECT unnest(inputs) i FROM current_runs)")
    assert per_file[0][0] == per_file[0][1] == sum(c["read"] for c in expected.values())
    stages = [r[0] for r in query(db, "SELECT t.stage FROM (SELECT unnest(timings) t FROM current_runs)")]
    assert stages == ["ingest", "validate", "compute", "publish"]
    assert set(flow_run["timings"]) == {"ingest", "validate", "compute", "publish", "release"}  # the release: timed too


def test_runs_table_keeps_the_core_libraries_versions(flow_run):
    """The run record keeps the versions of Python and the core libraries that computed it (as installed)."""
    import platform
    from importlib.metadata import version

    rows = query(Path(flow_run["db"]), "SELECT l.name, l.version FROM (SELECT unnest(libraries) l FROM current_runs)")
    names = ["polars", "pyarrow", "pandera", "prefect", "duckdb", "numpy", "scipy"]
    assert rows == [("python", platform.python_version())] + [(n, version(n)) for n in names]
    assert dict(rows)["duckdb"] == __import__("duckdb").__version__ and dict(rows)["polars"] == __import__("polars").__version__


def test_flow_artifacts(flow_run):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run["flow_run_id"]])))
        run = client.read_flow_run(flow_run["flow_run_id"])
    by_key = {a.key: a for a in arts}
    assert set(by_key) == {"sipas-2024-validation", "sipas-2024-ranking", "par-2024-ranking", "sipas-2024-release"}
    # the release stage after publish: the report and the workbook, named by their paths (outside the data root
    # here: absolute; no file:// link of the machine that ran it)
    release = flow_run["release"]
    assert Path(release["html"]).is_file() and Path(release["workbook"]).is_file()
    assert f"`{release['html']}`" in by_key["sipas-2024-release"].data
    assert "file://" not in by_key["sipas-2024-release"].data
    assert by_key["sipas-2024-validation"].type == "markdown"
    assert "quarantined" in by_key["sipas-2024-validation"].data and flow_run["run_id"] in by_key["sipas-2024-validation"].data
    table = by_key["par-2024-ranking"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert len(rows) == 63 and rows[0]["rank (hạng)"] == 1
    assert run.name.startswith("sipas-2024-") and run.state.is_completed()


def test_user_mistake_stops_before_the_stages_and_is_recorded(flow_run, sample_year, tmp_path):
    """A run refused before its stages (a source folder missing) publishes nothing, yet `runs` records it: status
    refused, its one line, its trigger (a direct call of the flow: `command`)."""
    from sipas_pipeline.orchestration import annual_run
    from sipas_pipeline.stages import InputError

    raw = tmp_path / "raw"
    shutil.copytree(sample_year, raw)
    shutil.rmtree(raw / "official")
    db = Path(flow_run["db"])
    before = query(db, "SELECT run_id FROM runs")
    current = query(db, "SELECT run_id FROM current_runs")
    with pytest.raises(InputError, match="official") as refused:
        annual_run(year=2024, raw=str(raw), db=str(db), work=str(tmp_path / "work"))
    added = [r for r in query(db, 'SELECT run_id, status, error, "trigger", parameters FROM runs') if (r[0],) not in before]
    assert [r[1:4] for r in added] == [("refused", str(refused.value), "command")]
    assert json.loads(added[0][4])["raw"] == str(raw) and query(db, "SELECT run_id FROM current_runs") == current


def test_failed_run_is_recorded_and_previous_stays_current(flow_run, sample_year, tmp_path, monkeypatch):
    from sipas_pipeline import stages
    from sipas_pipeline.orchestration import annual_run

    def broken_compute(m, work_dir, previous=None, incomplete=None):
        raise RuntimeError("compute blew up")

    monkeypatch.setattr(stages, "compute", broken_compute)
    db = Path(flow_run["db"])
    current = query(db, "SELECT run_id FROM current_runs")
    with pytest.raises(RuntimeError, match="compute blew up"):
        annual_run(year=2024, raw=str(sample_year), db=str(db), work=str(tmp_path / "work"))
    assert query(db, "SELECT run_id FROM current_runs") == current
    failed = query(db, "SELECT status, error, len(libraries) FROM runs WHERE status = 'failed'")
    assert failed == [("failed", "RuntimeError: compute blew up", 8)]  # a failed run keeps its libraries too


def test_cli_run_json_through_the_flow(prefect_harness, sample_year, tmp_path):
    from sipas_pipeline.cli import app

    db = tmp_path / "cli.duckdb"
    out = CliRunner().invoke(app, ["run", "--year", "2024", "--raw", str(sample_year), "--db", str(db),
                                   "--work", str(tmp_path / "w"), "--json", "--no-report"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "published" and result["db"] == str(db)
    assert result["release"] is None and not list((tmp_path / "w").rglob("*.xlsx"))  # --no-report: no release
    assert set(result["sources"]) == {"citizen", "official", "appraisal"}
    assert set(result["timings"]) == {"ingest", "validate", "compute", "publish"}
    assert query(db, "SELECT run_id FROM current_runs") == [(result["run_id"],)]


def test_cli_run_with_missing_raw_folder_fails_cleanly(prefect_harness, tmp_path):
    from sipas_pipeline.cli import app

    out = CliRunner().invoke(app, ["run", "--raw", str(tmp_path / "nope"), "--db", str(tmp_path / "x.duckdb")])
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert "nope: no such folder" in text and "Traceback" not in text and "Flow run" not in text


def test_survey_year_defaults_to_last_year_in_vietnam():
    """The year turns in Hà Nội (UTC+7) seven hours before it turns in UTC: at 2025-12-31 17:30 UTC it is already
    2026-01-01 00:30 there, so the scheduled run computes 2025 (a clock read in UTC would still say 2024); at
    16:30 UTC it is 23:30 on 31 December there: 2024. A year given is kept."""
    from datetime import UTC, datetime, timedelta, timezone

    from sipas_pipeline.orchestration import survey_year

    assert survey_year(None, datetime(2025, 12, 31, 17, 30, tzinfo=UTC)) == 2025
    assert survey_year(None, datetime(2025, 12, 31, 16, 30, tzinfo=UTC)) == 2024
    assert survey_year(None, datetime(2025, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))) == 2025  # 08:00 1 Jan
    assert survey_year(2023, datetime(2025, 12, 31, 17, 30, tzinfo=UTC)) == 2023
    assert survey_year(2024) == 2024
    assert survey_year(None) == survey_year(None, datetime.now(UTC))  # without `now`, the clock's


def test_docs_example_queries_run(flow_run):
    """The SQL examples of the analysts' page (docs/analysts.md, Examples) run on a published file and return rows."""
    from docs_pages import sql_statements

    statements = sql_statements("analysts", "Examples")
    assert len(statements) >= 4
    for sql in statements:
        rows = query(Path(flow_run["db"]), sql)
        if "change_places IS NOT NULL" not in sql:
            assert rows, sql


def test_no_personal_data_in_the_database(flow_run, sample_year):
    """Names and phone numbers of the raw exports appear in no table of the published file."""
    import csv
    import io

    import polars as pl

    from sipas_pipeline.publish import connect

    names, phones = set(), set()
    for path in (sample_year / "citizen").glob("*.csv"):
        text = path.read_bytes().decode("utf-8-sig", errors="ignore")
        for row in csv.DictReader(io.StringIO(text)):
            names.add((row.get("Họ và tên") or "").strip())
            phones.add((row.get("Số điện thoại") or "").strip())
    names.discard("")
    phones.discard("")
    assert len(names) > 20 and len(phones) > 20
    db = Path(flow_run["db"])
    tables = [t for (t,) in query(db, "SELECT table_name FROM duckdb_tables()")]
    forbidden = {"full_name", "phone", "id_number", "address", "email", "họ và tên"}
    con = connect(db, read_only=True)
    for table in tables:
        frame = pl.from_arrow(con.sql(f"SELECT * FROM {table}").to_arrow_table())
        assert not forbidden & {c.lower() for c in frame.columns}, table
        blob = "\n".join(str(v) for col in frame.select(pl.col(pl.Utf8)).iter_columns() for v in col.unique())
        assert not any(n in blob for n in names), table
        assert not any(p in blob for p in phones), table
    con.close()

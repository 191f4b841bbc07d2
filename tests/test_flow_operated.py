"""The flow as a deployment runs it, in this process against the session's Prefect server: relative paths and a
correction file named under the data root (never the current directory); a second run whose stages are served
from their manifests still shows each as a task, with one log line; the artifacts name the corrections and the
release's files under the data root; the year a manual re-run defaults to; the incomplete hint of a deployment."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from sipas_pipeline import completeness
from sipas_pipeline.publish import read_query as query

FIX = {"action": "set", "source": "citizen", "form_id": "24-01-000001", "field": "s_s_overall", "old_value": "4",
       "new_value": "1", "reason": "Nhập sai (mis-keyed)", "requested_by": "Sở Nội vụ Hà Nội", "requested_at": "2025-01-15"}


@pytest.fixture(scope="module")
def two_runs(prefect_harness, sample_year, tmp_path_factory) -> dict:
    """The sample year in a data root, run twice with relative parameters from another directory."""
    from prefect.logging.handlers import APILogWorker

    from sipas_pipeline.orchestration import annual_run

    tmp = tmp_path_factory.mktemp("operated")
    root, elsewhere = tmp / "root", tmp / "elsewhere"
    shutil.copytree(sample_year, root / "2024" / "raw")
    (root / "corrections").mkdir()
    with (root / "corrections" / "fix.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(FIX))
        w.writeheader()
        w.writerow(FIX)
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIPAS_DATA", str(root))
        mp.chdir(elsewhere)  # the serving process's directory plays no part
        first = annual_run(year=2024, raw="2024/raw", db="results.duckdb", corrections="fix.csv")
        second = annual_run(year=2024, raw="2024/raw", db="results.duckdb", corrections=["fix.csv"], report=False)
        APILogWorker.drain_all(timeout=10)  # logs reach the API in batches
        yield {"root": root, "elsewhere": elsewhere, "first": first, "second": second}


def flow_run_parts(flow_run_id: str) -> tuple[list, list, list]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        return (client.read_task_runs(flow_run_filter=runs), client.read_artifacts(flow_run_filter=runs),
                client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))))


def test_relative_paths_resolve_against_the_data_root(two_runs):
    root, first = two_runs["root"], two_runs["first"]
    assert first.db == str(root / "results.duckdb") and first.raw == str(root / "2024" / "raw")
    assert not any(two_runs["elsewhere"].iterdir())  # nothing written where the process stood
    assert [c["form_id"] for c in first.corrections] == ["24-01-000001"]
    params = [json.loads(p) for p, in query(root / "results.duckdb", "SELECT parameters FROM runs ORDER BY started_at")]
    assert [p["corrections"] for p in params] == [[str(root / "corrections" / "fix.csv")]] * 2
    assert [p["trigger"] for p in params] == ["command", "command"]  # called directly: no deployment
    assert (root / "2024" / "work").is_dir()  # the default work folder, under the root


def test_cached_stages_show_as_tasks_with_one_line(two_runs):
    second = two_runs["second"]
    assert set(second.cached) == {"ingest", "validate", "corrections", "compute"}
    tasks, _, logs = flow_run_parts(second.flow_run_id)
    names = sorted(t.name for t in tasks)
    for stage in ("ingest", "validate", "corrections", "compute"):
        assert f"{stage} (served from its manifest)" in names, names
        served = [x.message for x in logs if x.message.startswith(f"{stage}: served from its manifest (key ")]
        assert len(served) == 1, served
    assert all(t.state.is_completed() for t in tasks)
    assert any(x.message.startswith("sipas-pipeline ") and f"data root {two_runs['root']}; trigger command" in x.message
               for x in logs)


def test_artifacts_name_corrections_and_paths_under_the_root(two_runs):
    root, first = two_runs["root"], two_runs["first"]
    _, artifacts, _ = flow_run_parts(first.flow_run_id)
    by_key = {a.key: a.data for a in artifacts}
    assert "## Corrections (đính chính)" in by_key["sipas-2024-validation"]
    assert "- `fix.csv` line 2: set citizen 24-01-000001 s_s_overall 4 → 1: valid" in by_key["sipas-2024-validation"]
    release = by_key["sipas-2024-release"]
    html = Path(first.release["html"])
    assert f"`{html.relative_to(root)}` under the data root `{root}`" in release and "file://" not in release


def test_timings_include_the_release(two_runs):
    assert list(two_runs["first"].timings)[-2:] == ["publish", "release"] and two_runs["first"].timings["release"] > 0
    assert "release" not in two_runs["second"].timings  # report=False: no release built


def test_manual_rerun_year_is_the_latest_published(two_runs, monkeypatch):
    from sipas_pipeline.orchestration.run import run_year_default, survey_year

    monkeypatch.setenv("SIPAS_DATA", str(two_runs["root"]))
    assert run_year_default(None, "manual", "results.duckdb") == 2024  # the year in the file, not last year
    assert run_year_default(None, "schedule", "results.duckdb") == survey_year(None)
    assert run_year_default(2023, "manual", "results.duckdb") == 2023
    assert run_year_default(None, "manual", "nothing-here.duckdb") == survey_year(None)


def test_incomplete_hint_names_the_parameter_in_a_deployment(methodology):
    missing = {"01": {"citizen": "citizen: 0 valid forms, minimum 10"}}
    assert "(the parameter allow_incomplete=true publishes them marked incomplete)" in completeness.message(
        methodology, missing, completeness.ALLOW_PARAMETER)
    assert "(--allow-incomplete publishes them marked incomplete)" in completeness.message(methodology, missing)


def test_cli_run_prints_every_stage_and_whole_lines(two_runs, tmp_path):
    """`sipas run` piped (not a terminal): the stage line has every stage, the release, the server's start and the
    total, on one line however long; no figure is split across lines."""
    import re

    from typer.testing import CliRunner

    from sipas_pipeline.cli import app

    root = two_runs["root"]
    out = CliRunner().invoke(app, ["run", "--year", "2024", "--raw", str(root / "2024" / "raw"), "--db",
                                   str(tmp_path / "cli.duckdb"), "--work", str(root / "2024" / "work")])
    assert out.exit_code == 0, out.output
    (stages,) = [line for line in out.stdout.splitlines() if line.startswith("Stages (giây): ")]
    names = re.findall(r"(?:: |, )([a-z ]+) \d+\.\d\d s", stages)
    assert names == ["ingest", "validate", "compute", "publish", "release", "server start", "total"], stages
    national = [line for line in out.stdout.splitlines() if line.startswith("National (toàn quốc): SIPAS ")]
    assert len(national) == 1 and len(national[0]) > 80 and national[0].endswith("}")  # longer than 80: not wrapped

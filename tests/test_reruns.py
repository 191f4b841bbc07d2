"""Re-runs after corrections through the real Prefect flow: the audit, the diff, caching, determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from test_corrections import write_corrections
from typer.testing import CliRunner

from sipas_pipeline.catalog import Catalog, StageFolder
from sipas_pipeline.publish import read_query as query

pytestmark = pytest.mark.integration  # real Prefect flow runs and DuckDB files

# questions of the SIPAS tree and the overall satisfaction (a PAR sub-criterion) that one province's
# corrections set to "very dissatisfied" (1): its figures must move, and only its figures
QUESTIONS = ["s_s_acc_location", "s_s_pro_posted", "s_s_sta_courtesy", "s_s_res_correct", "s_s_overall"]
PROVINCE = "01"


def one_province_corrections(path: Path, work: Path) -> tuple[Path, int]:
    """Correction lines setting QUESTIONS to 1 on every valid form of PROVINCE (as bronze text)."""
    silver = pl.read_parquet(StageFolder(work).silver("citizen")).filter(pl.col("province_code") == PROVINCE)
    bronze = pl.concat([pl.read_parquet(p) for p in StageFolder(work).bronze_files("citizen")])
    forms = bronze.join(silver.select("source_file", "source_row"), on=["source_file", "source_row"])
    rows = [{"action": "set", "source": "citizen", "form_id": f["form_id"], "field": q, "old_value": f[q],
             "new_value": "1"}
            for f in forms.iter_rows(named=True) for q in QUESTIONS if f[q] not in (None, "1", "9")]
    return write_corrections(path, rows), len(rows)


@pytest.fixture(scope="module")
def reruns(prefect_harness, sample_year, tmp_path_factory) -> dict:
    from sipas_pipeline.orchestration import annual_run

    tmp = tmp_path_factory.mktemp("reruns")
    db, work = tmp / "sipas.duckdb", tmp / "work"

    def run(**kw):  # the analyst release is not what these tests are about: published without it
        return annual_run(year=2024, raw=str(kw.pop("raw", sample_year)), db=str(db), work=str(work), report=False, **kw)

    first = run()
    work_in = Catalog(work).input_folders()[0].root
    fix, lines = one_province_corrections(tmp / "fix.csv", work_in)
    corrected = run(corrections=[str(fix)])
    return {"db": db, "work": work, "run": run, "first": first, "corrected": corrected, "lines": lines, "tmp": tmp}


def test_corrected_run_changes_that_province_and_nothing_else(reruns, methodology):
    db, a, b = reruns["db"], reruns["first"]["run_id"], reruns["corrected"]["run_id"]
    assert query(db, "SELECT run_id FROM current_runs") == [(b,)]
    assert reruns["corrected"]["release"] is None and not list(reruns["work"].rglob("*.html"))  # report=False: no release
    assert json.loads(query(db, f"SELECT parameters FROM runs WHERE run_id = '{b}'")[0][0])["report"] is False
    assert query(db, f"SELECT count(*) FROM ranks WHERE run_id = '{a}'") == [(252,)]  # the first run stays queryable
    diff = query(db, f"SELECT kind, unit_level, unit_code, item, change, places FROM run_diff('{a}', '{b}')")
    region = methodology.provinces.filter(pl.col("province_code") == PROVINCE)["region_code"].item()
    moved = {(k, lvl, u) for k, lvl, u, _, ch, _ in diff if ch not in (None, 0)}
    assert {u for k, lvl, u in moved if lvl == "province"} == {PROVINCE}
    assert {u for k, lvl, u in moved if lvl == "region"} == {region}
    assert {k for k, _, _ in moved} == {"indicator", "sipas_index", "par_points", "rank"}
    # the province fell in the SIPAS ranking; other provinces only moved to make room for it: each province it
    # fell behind moved up one place with its value unchanged (the check is not over an empty list)
    sipas_rank = [r for r in diff if r[0] == "rank" and r[2] == PROVINCE and r[3] == "sipas"]
    assert sipas_rank and sipas_rank[0][4] < 0 and sipas_rank[0][5] < 0
    others = [r for r in diff if r[0] == "rank" and r[2] != PROVINCE]
    assert len([r for r in others if r[3] == "sipas"]) == -sipas_rank[0][5]
    assert all(r[4] == 0 and r[5] == 1 for r in others)


def test_audit_table_holds_each_correction(reruns):
    db, b = reruns["db"], reruns["corrected"]["run_id"]
    rows = query(db, f"SELECT action, source, field, new_value, reason, requested_by, outcome FROM corrections "
                     f"WHERE run_id = '{b}' ORDER BY line")
    assert len(rows) == reruns["lines"] > 20
    assert {r[:2] for r in rows} == {("set", "citizen")} and {r[3] for r in rows} == {"1"}
    assert {r[4:] for r in rows} == {("Phiếu nhập sai", "Sở Nội vụ Hà Nội", "valid")}
    assert query(db, "SELECT count(*) FROM corrections WHERE run_id <> $b", {"b": b}) == [(0,)]


def test_rerun_serves_unchanged_stages_from_cache(reruns):
    assert reruns["first"]["cached"] == []
    assert reruns["corrected"]["cached"] == ["ingest", "validate"]
    assert reruns["corrected"]["timings"]["ingest"] == 0.0 and reruns["corrected"]["timings"]["corrections"] > 0


def test_same_inputs_give_identical_results(reruns):
    again = reruns["run"]()
    assert again["cached"] == ["ingest", "validate", "compute"]
    assert again["results_hash"] == reruns["first"]["results_hash"] != reruns["corrected"]["results_hash"]
    assert query(reruns["db"], f"SELECT count(*) FROM run_diff('{reruns['first']['run_id']}', '{again['run_id']}')") == [(0,)]
    # the hashes in the runs table are those of the result tables written
    hashes = dict(query(reruns["db"], "SELECT run_id, results_hash FROM runs"))
    assert hashes[again["run_id"]] == hashes[reruns["first"]["run_id"]]


def test_changed_input_is_never_served_from_cache(reruns, sample_year):
    raw = reruns["tmp"] / "raw_changed"
    shutil.copytree(sample_year, raw)
    batch = next(p for p in sorted((raw / "citizen").glob("*.csv")) if "_01_" in p.name)
    text = batch.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    header = text[0].rstrip("\r\n").split(",")
    col = next(i for i, h in enumerate(header) if "s_s_overall" in h.lower() or "S_S_OVERALL" in h)
    cells = text[1].rstrip("\r\n").split(",")
    cells[col] = "1" if cells[col] != "1" else "5"
    text[1] = ",".join(cells) + "\n"
    batch.write_text("".join(text), encoding="utf-8")
    changed = reruns["run"](raw=raw)
    assert changed["cached"] == []
    assert changed["results_hash"] != reruns["first"]["results_hash"]


def test_conflicting_correction_stops_and_leaves_the_database_as_it_was(reruns):
    from sipas_pipeline.corrections import CorrectionError

    db = reruns["db"]
    tables = ["runs", "indicator_values", "sipas_indices", "par_points", "par_totals", "ranks", "quarantine", "corrections"]
    before = {t: query(db, f"SELECT count(*) FROM {t}") for t in tables} | {"current": query(db, "SELECT * FROM current_runs")}
    bad = write_corrections(reruns["tmp"] / "bad.csv", [
        {"action": "set", "source": "citizen", "form_id": "24-01-000001", "field": "s_s_overall",
         "old_value": "not what is there", "new_value": "5"}])
    with pytest.raises(CorrectionError, match=r"bad.csv:2: old value 'not what is there' of s_s_overall does not match") as e:
        reruns["run"](corrections=[str(bad)])
    after = {t: query(db, f"SELECT count(*) FROM {t}") for t in tables} | {"current": query(db, "SELECT * FROM current_runs")}
    assert after == before | {"runs": [(before["runs"][0][0] + 1,)]}  # nothing published; the refusal recorded
    assert query(db, "SELECT status, error FROM runs ORDER BY started_at DESC LIMIT 1") == [("refused", str(e.value))]


def test_cli_runs_list_and_diff(reruns):
    from sipas_pipeline.cli import app

    db = str(reruns["db"])
    listed = CliRunner().invoke(app, ["runs", "list", "--db", db, "--json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)
    first = next(r for r in runs if r["run_id"] == reruns["first"]["run_id"])
    assert first["read"] == first["valid"] + first["quarantined"] and first["status"] == "published"
    assert next(r for r in runs if r["run_id"] == reruns["corrected"]["run_id"])["corrections"] == reruns["lines"]
    out = CliRunner().invoke(app, ["runs", "diff", reruns["first"]["run_id"], reruns["corrected"]["run_id"], "--db", db])
    assert out.exit_code == 0, out.output
    assert "Hà Nội" in out.output and "Ranks" in out.output
    missing = CliRunner().invoke(app, ["runs", "diff", "nope", reruns["first"]["run_id"], "--db", db])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output


def test_cli_conflicting_correction_is_one_message_not_a_traceback(reruns, sample_year):
    """Through the real command (its own process, on the session's Prefect server): exit 2, the message, no
    traceback."""
    import subprocess
    import sys

    bad = write_corrections(reruns["tmp"] / "bad_cli.csv", [
        {"action": "set", "source": "citizen", "form_id": "24-01-000001", "field": "s_s_overall",
         "old_value": "not what is there", "new_value": "5"}])
    done = subprocess.run([sys.executable, "-m", "sipas_pipeline.cli", "run", "--raw", str(sample_year),
                           "--db", str(reruns["db"]), "--work", str(reruns["work"]), "--corrections", str(bad)],
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-2000:]
    assert "bad_cli.csv:2: old value 'not what is there' of s_s_overall does not match" in " ".join(output.split())
    assert "Traceback" not in output

"""Bad-input suite, issue #19, through real Prefect flow runs (the session's server): a raw folder changed while a
run reads it, then a second run on the same work folder publishing the original hash; the corrections audit naming
the file passed when the corrections stage is cached; two runs on one work folder; a release that fails after
publishing. Each asserts the exact line, what was published and that nothing was poisoned."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_bad_runs import SET, SIPAS, corrections_file, raw_copy

from sipas_pipeline import stages
from sipas_pipeline.catalog import Catalog
from sipas_pipeline.publish import read_query

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
BATCH = "citizen/sipas2024_01_ha-noi.csv"


def flow(**kw):
    """One run of the real flow on the session's Prefect server; its final state."""
    from sipas_pipeline.orchestration import annual_run

    return annual_run(year=2024, return_state=True, **kw)


def failure(state) -> str:
    assert state.is_failed()
    with pytest.raises(Exception) as exc:
        state.result()
    return str(exc.value)


def sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_raw_folder_changed_while_the_run_reads_then_the_same_work_folder_publishes_the_original(
        tmp_path, prefect_harness, sample_year, sample_work, methodology, monkeypatch):
    raw = raw_copy(tmp_path, sample_year)
    original = (raw / BATCH).read_bytes()
    db, work = tmp_path / "sipas.duckdb", tmp_path / "work"
    key_of = stages.inputs_key

    def resent_after_the_key(m, folder, hashes=None):  # a field team re-sends, deletes and adds at 02:00
        key = key_of(m, folder, hashes)
        (raw / BATCH).write_bytes(original.replace(b"\r\n", b"\n"))
        (raw / "citizen" / "sipas2024_02_ha-giang.csv").rename(tmp_path / "away.csv")
        shutil.copyfile(raw / "citizen" / "sipas2024_04_cao-bang.csv", raw / "citizen" / "sipas2024_99_extra.csv")
        return key

    monkeypatch.setattr(stages, "inputs_key", resent_after_the_key)
    line = failure(flow(raw=str(raw), db=str(db), work=str(work), report=False))
    assert line == (f"{raw}: the raw folder changed between the run's first look and its reading: {BATCH} changed, "
                    "citizen/sipas2024_02_ha-giang.csv deleted, citizen/sipas2024_99_extra.csv added; nothing was "
                    "published: run again once the folder is complete")
    monkeypatch.setattr(stages, "inputs_key", key_of)
    assert not list(work.rglob("_manifest.json"))  # no manifest for what was not read
    refused = [("refused", line)]  # nothing published; the attempt recorded with its line (issue #20)
    assert read_query(db, "SELECT status, error FROM runs") == refused

    # the folder restored; then changed again after ingest, before publishing: the check before publish stops it
    (raw / BATCH).write_bytes(original)
    (tmp_path / "away.csv").rename(raw / "citizen" / "sipas2024_02_ha-giang.csv")
    (raw / "citizen" / "sipas2024_99_extra.csv").unlink()
    validate = stages.validate

    def changed_after_reading(m, folder):
        out = validate(m, folder)
        (raw / BATCH).write_bytes(original + original.splitlines(keepends=True)[1])
        return out

    monkeypatch.setattr(stages, "validate", changed_after_reading)
    line = failure(flow(raw=str(raw), db=str(db), work=str(work), report=False))
    assert line == (f"{raw}: the raw folder changed while the run read it: {BATCH} changed; nothing was published: "
                    "run again once the folder is complete")
    refused.append(("refused", line))  # nothing was published; the attempt recorded
    assert read_query(db, "SELECT status, error FROM runs ORDER BY started_at") == refused
    monkeypatch.setattr(stages, "validate", validate)

    # restored: a run on the same work folder (relative, with the release on) publishes the original figures
    (raw / BATCH).write_bytes(original)
    monkeypatch.chdir(tmp_path)
    result = flow(raw=str(raw), db=str(db), work="work").result()
    assert result.results_hash == sample_work["summary"].results_hash
    inputs = read_query(db, "SELECT i.file, i.sha256 FROM (SELECT unnest(inputs) AS i FROM current_runs)")
    assert dict(inputs) == {p.relative_to(raw).as_posix(): sha(p) for s in ("citizen", "official", "appraisal")
                            for p in (raw / s).iterdir()}
    assert Path(result.release["html"]).is_absolute() and Path(result.release["html"]).is_file()


def test_corrections_audit_names_the_file_passed_when_the_stage_is_cached(tmp_path, prefect_harness, sample_year,
                                                                           methodology, sample_flow_work):
    db, work = tmp_path / "sipas.duckdb", tmp_path / "work"
    shutil.copytree(sample_flow_work, work)  # ingest and validate served from their manifests: the corrections are the point
    fix = {**SET, "old_value": read_query_value(sample_year)}
    first = corrections_file(tmp_path / "fix_utf8.csv", [fix])
    second = corrections_file(tmp_path / "fix_cp1258.csv", [fix], encoding="cp1258")
    assert sha(first) != sha(second)
    for path in (first, second):
        result = flow(raw=str(sample_year), db=str(db), work=str(work), corrections=[str(path)], report=False).result()
    assert "corrections" in result.cached
    audit = read_query(db, "SELECT file, file_sha256, line, outcome FROM current_corrections")
    assert audit == [(str(second), sha(second), 2, "valid")]
    assert [c["file"] for c in result.corrections] == [str(second)]


def read_query_value(sample_year: Path) -> str:
    """The keyed value of SET's field in its form (its old_value)."""
    import csv

    rows = csv.DictReader((sample_year / BATCH).read_text(encoding="utf-8-sig").splitlines())
    return next(r for r in rows if r["Mã phiếu"] == SET["form_id"])["S_S_OVERALL"]


HOLDER = """
import sys, time
from pathlib import Path
from sipas_pipeline.catalog import Catalog
with Catalog(Path(sys.argv[1])).holding("2024-other-run", 2024):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_two_runs_on_one_work_folder(tmp_path, prefect_harness, sample_year, sample_flow_work):
    """A run holds the work folder (a real process): a second run stops at once with one line, nothing published;
    the holder killed (SIGKILL), the next run takes its marker over and publishes (the work folder the flow's, its
    stages served from their manifests: the marker is the point)."""
    db, work = tmp_path / "sipas.duckdb", tmp_path / "work"
    shutil.copytree(sample_flow_work, work)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(work)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        line = failure(flow(raw=str(sample_year), db=str(db), work=str(work), report=False))
        marker = json.loads(Catalog(work).lock_file.read_text(encoding="utf-8"))
        assert line == (f"{work}: the work folder is in use by run 2024-other-run (year 2024, PID {holder.pid}, since "
                        f"{marker['since']}); nothing was done: run again when it has finished, or give another --work")
        assert read_query(db, "SELECT status, error FROM runs") == [("refused", line)]  # recorded, nothing published
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    result = flow(raw=str(sample_year), db=str(db), work=str(work), report=False).result()
    assert result.status == "published"
    assert Catalog(work).lock_file.read_text(encoding="utf-8") == ""  # released (empty) after the run


def test_release_failing_after_publishing_says_so_in_json_and_exits_3(tmp_path, prefect_harness, sample_year,
                                                                      methodology, sample_flow_work):
    """The release folder of the run holds files sipas did not make: the run is published, its JSON says the
    release failed (one line), exit 3, the folder untouched (the work folder the flow's: its stages served from
    their manifests)."""
    from prefect.settings import PREFECT_API_URL

    work = tmp_path / "work"
    shutil.copytree(sample_flow_work, work)
    report_dir = Catalog(work).inputs(stages.inputs_key(methodology, sample_year)).report_dir
    report_dir.mkdir(parents=True)
    (report_dir / "draft.docx").write_text("bản nháp", encoding="utf-8")
    env = os.environ | {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_HOME": str(ROOT / ".prefect")}
    p = subprocess.run([str(SIPAS), "run", "--year", "2024", "--raw", str(sample_year), "--db", str(tmp_path / "s.duckdb"),
                        "--work", str(work), "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 3 and "Traceback" not in p.stderr + p.stdout
    out = json.loads(p.stdout)
    why = (f"{report_dir}: not empty and not made by sipas (holds draft.docx): nothing written; choose an empty or new "
           "folder with --out")
    assert out["status"] == "published" and out["release"] == {"error": why}
    assert p.stderr.strip().splitlines()[-1] == f"error: run {out['run_id']} was published; its release failed: {why}"
    assert read_query(tmp_path / "s.duckdb", "SELECT run_id, status FROM current_runs") == [(out["run_id"], "published")]
    assert sorted(p.name for p in report_dir.iterdir()) == ["draft.docx"]

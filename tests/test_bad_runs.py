"""Bad runs (issue #12, the run-level part): raw folders, correction files, incomplete provinces, work
folders that cannot be written. Each case asserts the exact one-line message, exit code 2, no
traceback, and that nothing the tool did not make was touched; accounting where rows are read."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from sipas_pipeline import completeness
from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.cli import app
from sipas_pipeline.corrections import COLUMNS, CorrectionError, overlay_raw, read_corrections
from sipas_pipeline.publish import read_query as query
from sipas_pipeline.stages import ingest, validate
from sipas_pipeline.synth.writers import _cp1258_map, write_xlsx

ROOT = Path(__file__).resolve().parents[1]
SIPAS = Path(sys.executable).with_name("sipas")
WHO = {"reason": "Gửi lại (re-sent)", "requested_by": "Sở Nội vụ Hà Nội", "requested_at": "2025-01-15"}
HEAD = "incomplete inputs for 1 province, nothing published (--allow-incomplete publishes them marked incomplete): "


def raw_copy(tmp_path: Path, sample_year: Path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(sample_year, raw)
    return raw


def cli(args: list[str]) -> tuple[int, str]:
    """Run `sipas ARGS` in this process; (exit code, stderr). A traceback fails the test."""
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


def one_line_error(code_err: tuple[int, str], message: str) -> None:
    """Exit 2 and exactly one line: `error: <message>`."""
    code, err = code_err
    assert (code, err.strip().splitlines()) == (2, [f"error: {message}"])


def run_sipas(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run `sipas ARGS` as a real process reporting to the session's Prefect test server; (exit code, stderr)."""
    from prefect.settings import PREFECT_API_URL

    env = os.environ | {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_HOME": str(ROOT / ".prefect")}
    p = subprocess.run([str(SIPAS), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return p.returncode, p.stderr


def flow_error(code_err: tuple[int, str], message: str) -> None:
    """A run stopped inside the Prefect flow: exit 2, the one-line error last, after Prefect's own log lines."""
    code, err = code_err
    lines = err.strip().splitlines()
    assert (code, lines[-1]) == (2, f"error: {message}")
    assert [x for x in lines if x.startswith("error:")] == [lines[-1]] and "Traceback" not in err


def corrections_file(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    """A correction file as a province would send it, in `encoding` (Windows-1258 with tone marks apart)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: "" for k in COLUMNS} | WHO | r)
    text = buf.getvalue().translate(_cp1258_map()) if encoding == "cp1258" else buf.getvalue()
    path.write_bytes(text.encode(encoding))
    return path


SET = {"action": "set", "source": "citizen", "form_id": "24-01-000001", "field": "s_s_overall", "old_value": "1",
       "new_value": "4", "reason": "Nhập sai (mis-keyed)"}


# ---- raw folders -----------------------------------------------------------------------------------------

def test_raw_folder_missing(tmp_path):
    one_line_error(cli(["validate", "--raw", str(tmp_path / "nope"), "--work", str(tmp_path / "w")]),
                   f"{tmp_path / 'nope'}: no such folder")


def test_raw_folder_is_a_file(tmp_path):
    (tmp_path / "raw.csv").write_text("a,b\n", encoding="utf-8")
    one_line_error(cli(["validate", "--raw", str(tmp_path / "raw.csv"), "--work", str(tmp_path / "w")]),
                   f"{tmp_path / 'raw.csv'}: not a folder (--raw names the folder holding citizen/, official/, appraisal/)")


def test_empty_source_folder(tmp_path, sample_year):
    raw = raw_copy(tmp_path, sample_year)
    for f in (raw / "official").iterdir():
        f.unlink()
    one_line_error(cli(["validate", "--raw", str(raw), "--work", str(tmp_path / "w")]),
                   f"source 'official': no export files in {raw / 'official'}")


def test_default_raw_folder_missing_says_raw_or_demo(tmp_path, monkeypatch):
    monkeypatch.setenv("SIPAS_DATA", str(tmp_path / "data"))
    one_line_error(cli(["run", "--year", "2024"]),
                   f"{tmp_path / 'data' / '2024' / 'raw'}: no such folder: pass --raw DIR (the year's exports) "
                   "or --demo (a synthetic year)")
    assert not (tmp_path / "data").exists()  # nothing made, nothing generated


def test_demo_and_raw_together_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SIPAS_DATA", str(tmp_path / "data"))
    one_line_error(cli(["run", "--demo", "--raw", str(tmp_path)]),
                   "--demo and --raw exclude each other: --demo runs the synthetic year in data/demo/<year>/raw, "
                   "--raw DIR your exports")
    assert not (tmp_path / "data").exists()


@pytest.mark.integration
def test_file_in_default_raw_folder_survives_sipas_run(tmp_path):
    """A real export placed in the README's default raw folder: `sipas run` (a real process) only reads it."""
    data = tmp_path / "data"
    export = data / "2024" / "raw" / "citizen" / "sipas2024_01_ha-noi.csv"
    export.parent.mkdir(parents=True)
    shutil.copyfile(ROOT / "sample_data" / "2024" / "citizen" / "sipas2024_01_ha-noi.csv", export)
    before = export.read_bytes()
    env = os.environ | {"SIPAS_DATA": str(data), "PREFECT_HOME": str(ROOT / ".prefect")}
    p = subprocess.run([str(SIPAS), "run", "--year", "2024"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert (p.returncode, p.stderr.strip().splitlines()) == (
        2, [f"error: source 'official': no export files in {data / '2024' / 'raw' / 'official'}"])
    assert export.read_bytes() == before
    assert sorted(x.relative_to(data).as_posix() for x in data.rglob("*")) == [
        "2024", "2024/raw", "2024/raw/citizen", "2024/raw/citizen/sipas2024_01_ha-noi.csv"]


def test_sample_refuses_a_folder_it_did_not_make(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    one_line_error(cli(["sample", "--out", str(out), "--scale", "0.01"]),
                   f"{out}: not empty and not made by sipas (no .sipas-made marker): nothing deleted; choose an empty "
                   "or new folder for the synthetic year")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


@pytest.mark.integration
def test_sample_replaces_only_what_it_made(tmp_path):
    out = tmp_path / "demo"
    assert cli(["sample", "--out", str(out), "--scale", "0.01", "--json"])[0] == 0
    (out / "citizen" / "stray.csv").write_text("x\n", encoding="utf-8")
    assert cli(["sample", "--out", str(out), "--scale", "0.01", "--json"])[0] == 0  # its own folder: made again
    assert not (out / "citizen" / "stray.csv").exists()
    assert (out / ".sipas-made").is_file()


def test_bronze_folder_not_made_by_sipas_is_not_deleted(tmp_path, methodology, sample_year):
    work = tmp_path / "work"
    StageFolder(work).bronze_dir.mkdir(parents=True)
    (StageFolder(work).bronze_dir / "mine.parquet").write_bytes(b"PAR1")
    with pytest.raises(Exception, match="not empty and not made by sipas") as exc:
        ingest(methodology, sample_year, work)
    assert type(exc.value).__name__ == "InputError"
    assert (StageFolder(work).bronze_dir / "mine.parquet").read_bytes() == b"PAR1"


def unreadable_as(path: Path) -> list[str]:
    """Command prefix under which the file's permissions apply: root reads everything, so as root the command
    runs without the capabilities that override them (still root: the checkout and its .venv stay readable
    whatever the folder it was cloned into)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv is needed to test permissions as root"
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.mark.integration
def test_unreadable_export_is_reported_and_the_run_goes_on(sample_year):
    """Permission denied on one export: reported as unreadable with the cause; the other files are read."""
    base = Path(tempfile.mkdtemp(prefix="sipas-perm-"))
    try:
        base.chmod(0o755)
        raw = base / "raw"
        shutil.copytree(sample_year, raw)
        bad = raw / "citizen" / "sipas2024_02_ha-giang.csv"
        bad.chmod(0o000)
        work = base / "work"
        work.mkdir()
        work.chmod(0o777)
        cmd = [*unreadable_as(bad), str(SIPAS), "validate", "--raw", str(raw), "--work", str(work), "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ | {"HOME": str(work)})
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stderr
        import json

        report = json.loads(p.stdout)
        assert report["unreadable_files"] == [{"file": "citizen/sipas2024_02_ha-giang.csv", "source": "citizen",
                                               "reason": "cannot be read: permission denied"}]
        assert report["incomplete"] == {"02": "citizen: 0 valid forms, minimum 10 (batch "
                                              "citizen/sipas2024_02_ha-giang.csv unreadable: cannot be read: permission denied)"}
        c = report["sources"]["citizen"]
        assert c["read"] == c["valid"] + c["quarantined"] and c["unreadable_files"] == 1
    finally:
        shutil.rmtree(base)


# ---- work folders --------------------------------------------------------------------------------------------

def test_work_folder_under_a_file(tmp_path, sample_year):
    (tmp_path / "plain.txt").write_text("x", encoding="utf-8")
    work = tmp_path / "plain.txt" / "work"
    code, err = cli(["validate", "--raw", str(sample_year), "--work", str(work)])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.strip().endswith(": not a directory") and str(tmp_path / "plain.txt") in err


@pytest.mark.integration
def test_work_folder_disk_full(tmp_path, sample_year):
    """A full disk under --work (a 128 KiB tmpfs mounted in a private mount namespace): one line naming the
    folder, exit 2, no traceback."""
    work = tmp_path / "work"
    work.mkdir()
    script = 'mount -t tmpfs -o size=128k tmpfs "$1" && exec "$2" validate --raw "$3" --work "$1"'
    p = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(work), str(SIPAS),
                        str(sample_year)], capture_output=True, text=True, timeout=300)
    assert (p.returncode, p.stderr.strip().splitlines()) == (2, [f"error: {work}: no space left on device"])


# ---- correction files ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1258"])
def test_correction_file_encodings_read_like_exports(tmp_path, methodology, encoding):
    utf8 = read_corrections(methodology, [corrections_file(tmp_path / "a.csv", [SET])])
    other = read_corrections(methodology, [corrections_file(tmp_path / "b.csv", [SET], encoding)])
    assert [c.row() | {"file": ""} for c in other] == [c.row() | {"file": ""} for c in utf8]
    assert other[0].reason == "Nhập sai (mis-keyed)"


def test_correction_file_xlsx_is_read(tmp_path, methodology):
    frame = pl.DataFrame([{k: "" for k in COLUMNS} | WHO | SET])
    write_xlsx(frame, tmp_path / "fix.xlsx")
    got = read_corrections(methodology, [tmp_path / "fix.xlsx"])
    assert (got[0].action, got[0].form_id, got[0].new_value, got[0].line) == ("set", "24-01-000001", "4", 2)


@pytest.mark.integration
def test_correction_file_old_excel_refused(tmp_path, methodology):
    (tmp_path / "fix.xls").write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 64)
    one_line_error(cli(["run", "--raw", str(ROOT / "sample_data" / "2024"), "--db", str(tmp_path / "x.duckdb"),
                        "--corrections", str(tmp_path / "fix.xls")]),
                   f"{tmp_path / 'fix.xls'}: cannot be read as a correction file: unsupported correction file type "
                   "'.xls' (CSV, TSV or TXT text, or an .xlsx workbook)")
    assert not (tmp_path / "x.duckdb").exists()


def test_correction_file_garbage(tmp_path):
    (tmp_path / "fix.csv").write_bytes(bytes(range(256)) * 4)
    one_line_error(cli(["run", "--raw", str(ROOT / "sample_data" / "2024"), "--db", str(tmp_path / "x.duckdb"),
                        "--corrections", str(tmp_path / "fix.csv")]),
                   f"{tmp_path / 'fix.csv'}: cannot be read as a correction file: binary content (NUL bytes): "
                   "not a text export")


def test_correction_unknown_action(tmp_path):
    path = corrections_file(tmp_path / "fix.csv", [SET | {"action": "delete"}])
    one_line_error(cli(["run", "--raw", str(ROOT / "sample_data" / "2024"), "--db", str(tmp_path / "x.duckdb"),
                        "--corrections", str(path)]),
                   f"{path}:2: unknown action 'delete' (one of set, move, withdraw, replace_batch, keep)")


def test_correction_withdraw_and_set_same_form(tmp_path):
    path = corrections_file(tmp_path / "fix.csv", [
        {"action": "withdraw", "source": "citizen", "form_id": "24-01-000001"}, SET])
    one_line_error(cli(["run", "--raw", str(ROOT / "sample_data" / "2024"), "--db", str(tmp_path / "x.duckdb"),
                        "--corrections", str(path)]),
                   f"{path}:3: form 24-01-000001 is withdrawn at {path}:2 and set here: one form cannot be both "
                   "(keep one line)")


def test_correction_replace_batch_escaping_raw_folder(tmp_path):
    path = corrections_file(tmp_path / "fix.csv", [{"action": "replace_batch", "source": "citizen",
                                                    "field": "../../etc/passwd", "new_value": "x.csv"}])
    one_line_error(cli(["run", "--raw", str(ROOT / "sample_data" / "2024"), "--db", str(tmp_path / "x.duckdb"),
                        "--corrections", str(path)]),
                   f"{path}:2: batch file ../../etc/passwd is outside the raw folder (give its path inside it, "
                   "e.g. citizen/x.csv)")


def replace_line(tmp_path: Path, field: str, new_value: str) -> Path:
    return corrections_file(tmp_path / "fix.csv", [{"action": "replace_batch", "source": "citizen", "field": field,
                                                    "new_value": new_value}])


def test_correction_replace_batch_dot_slash_path_replaces(tmp_path, methodology, sample_year):
    resent = tmp_path / "resent.csv"
    shutil.copyfile(sample_year / "citizen" / "sipas2024_02_ha-giang.csv", resent)
    fixes = read_corrections(methodology, [replace_line(tmp_path, "./citizen//sipas2024_01_ha-noi.csv", "resent.csv")])
    assert fixes[0].field == "citizen/sipas2024_01_ha-noi.csv"
    out = overlay_raw(methodology, sample_year, fixes, tmp_path / "overlay")
    assert (out / "citizen" / "sipas2024_01_ha-noi.csv").resolve() == resent.resolve()
    assert (out / "citizen" / "sipas2024_02_ha-giang.csv").resolve() == (
        sample_year / "citizen" / "sipas2024_02_ha-giang.csv").resolve()


def test_correction_replacement_missing(tmp_path, methodology, sample_year):
    fixes = read_corrections(methodology, [replace_line(tmp_path, "citizen/sipas2024_01_ha-noi.csv", "gone.csv")])
    with pytest.raises(CorrectionError) as exc:
        overlay_raw(methodology, sample_year, fixes, tmp_path / "overlay")
    assert str(exc.value) == f"{tmp_path / 'fix.csv'}:2: re-sent file {tmp_path / 'gone.csv'} not found"
    assert not (tmp_path / "overlay").exists()


def test_correction_replacement_unreadable(tmp_path, methodology, sample_year):
    (tmp_path / "resent.csv").write_bytes(b"\x00\x01garbage" * 50)
    fixes = read_corrections(methodology, [replace_line(tmp_path, "citizen/sipas2024_01_ha-noi.csv", "resent.csv")])
    with pytest.raises(CorrectionError) as exc:
        overlay_raw(methodology, sample_year, fixes, tmp_path / "overlay")
    assert str(exc.value) == (f"{tmp_path / 'fix.csv'}:2: re-sent file {tmp_path / 'resent.csv'} cannot be read: "
                              "binary content (NUL bytes): not a text export")


def test_correction_replacement_outside_both_folders(tmp_path, methodology, sample_year):
    (tmp_path / "in").mkdir()
    path = corrections_file(tmp_path / "in" / "fix.csv", [{"action": "replace_batch", "source": "citizen",
                                                           "field": "citizen/sipas2024_01_ha-noi.csv",
                                                           "new_value": "../../../../etc/hostname"}])
    fixes = read_corrections(methodology, [path])
    with pytest.raises(CorrectionError) as exc:
        overlay_raw(methodology, sample_year, fixes, tmp_path / "overlay")
    assert str(exc.value) == (f"{path}:2: re-sent file ../../../../etc/hostname is outside the correction file's "
                              "folder and the raw folder")


# ---- completeness --------------------------------------------------------------------------------------------

def missing_after(tmp_path: Path, m, raw: Path) -> tuple[str, dict]:
    """Ingest + validate `raw`; the completeness message (or '') and the accounting."""
    work = tmp_path / "work"
    ingested, checked = ingest(m, raw, work), validate(m, work)
    for c in checked["sources"].values():
        assert c["read"] == c["valid"] + c["quarantined"]
    missing = completeness.assess(m, work, ingested["files"], checked["batches"], ingested["unreadable_files"])
    return (completeness.message(m, missing) if missing else ""), checked["sources"]


def header_only(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")


@pytest.mark.integration
def test_header_only_batch(tmp_path, methodology, sample_year):
    raw = raw_copy(tmp_path, sample_year)
    header_only(raw / "citizen" / "sipas2024_01_ha-noi.csv")
    msg, _ = missing_after(tmp_path, methodology, raw)
    assert msg == HEAD + ("01 Hà Nội: citizen: 0 valid forms, minimum 10 "
                          "(batch citizen/sipas2024_01_ha-noi.csv header-only)")


@pytest.mark.integration
def test_all_rows_quarantined_batch(tmp_path, methodology, sample_year):
    raw = raw_copy(tmp_path, sample_year)
    path = raw / "citizen" / "sipas2024_01_ha-noi.csv"
    frame = pl.read_csv(path, infer_schema=False)
    frame.with_columns(pl.lit("2023-01-01").alias("Ngày phỏng vấn")).write_csv(path)
    msg, sources = missing_after(tmp_path, methodology, raw)
    assert msg == HEAD + (f"01 Hà Nội: citizen: 0 valid forms, minimum 10 (batch citizen/sipas2024_01_ha-noi.csv: "
                          f"all {frame.height} rows quarantined (survey_window {frame.height}, allowed_codes 1))")
    assert sources["citizen"]["quarantined"] >= frame.height  # every row of the batch is accounted for


def edit_appraisal(raw: Path, fn) -> None:
    path = next((raw / "appraisal").glob("*.xlsx"))
    write_xlsx(fn(pl.read_excel(path, read_options={"dtypes": "string"})), path, sheet="Diem tham dinh")


def set_points(code: str, subs: list[str], value: str | None):
    target = (pl.col("Mã tỉnh") == code) & pl.col("Mã TCTP").is_in(subs)
    return lambda d: d.with_columns(pl.when(target).then(pl.lit(value, pl.Utf8)).otherwise(pl.col("Điểm thẩm định"))
                                    .alias("Điểm thẩm định"))


@pytest.mark.integration
def test_appraisal_points_unusable_or_missing(tmp_path, methodology, sample_year):
    """Four provinces' appraisal points spoilt four ways in one export: above the maximum, negative, blank, and
    no row at all; one line lists each province (in code order) with what it lacks and why."""
    raw = raw_copy(tmp_path, sample_year)

    def spoil(d: pl.DataFrame) -> pl.DataFrame:
        for code, value in (("02", "99"), ("06", "-1"), ("08", None)):
            d = set_points(code, ["1.2.1", "3.4.2"], value)(d)
        return d.filter(pl.col("Mã tỉnh") != "04")

    edit_appraisal(raw, spoil)
    msg, _ = missing_after(tmp_path, methodology, raw)
    assert msg == ("incomplete inputs for 4 provinces, nothing published (--allow-incomplete publishes them marked "
                   "incomplete): 02 Hà Giang: appraisal: 2 of 68 sub-criteria missing: 1.2.1, 3.4.2 (quarantined: above "
                   "maximum) | 04 Cao Bằng: appraisal: all 68 sub-criteria missing (no row in the export) | 06 Bắc Kạn: "
                   "appraisal: 2 of 68 sub-criteria missing: 1.2.1, 3.4.2 (quarantined: negative) | 08 Tuyên Quang: "
                   "appraisal: 2 of 68 sub-criteria missing: 1.2.1, 3.4.2 (blank)")


@pytest.mark.integration
def test_dropped_citizen_batch_stops_then_publishes_incomplete(tmp_path, prefect_harness, sample_year):
    """The issue's case through the real flow: one province's citizen batch dropped. The run (the command line in
    this process) stops with the province named (exit 2, one line, nothing published but the refusal in `runs`);
    --allow-incomplete (the
    command in its own process) publishes it with null values, null ranks and the reason; the nation's mean says
    it covers 62 of 63 provinces."""
    raw = raw_copy(tmp_path, sample_year)
    (raw / "citizen" / "sipas2024_01_ha-noi.csv").unlink()
    db = tmp_path / "r.duckdb"
    args = ["run", "--year", "2024", "--raw", str(raw), "--db", str(db), "--work", str(tmp_path / "work"), "--no-report"]
    why = "citizen: 0 valid forms, minimum 10"
    flow_error(cli(args), HEAD + f"01 Hà Nội: {why}")
    assert query(db, 'SELECT status, error, "trigger" FROM runs') == [("refused", HEAD + f"01 Hà Nội: {why}", "command")]
    assert query(db, "SELECT count(*) FROM current_runs") == [(0,)]  # recorded, nothing published
    code, err = run_sipas([*args, "--allow-incomplete"], tmp_path)
    assert code == 0, err
    assert f"incomplete (thiếu dữ liệu), published without value or rank: province 01: {why}" in err
    with duckdb.connect(str(db), read_only=True) as con:
        ranks = con.execute("SELECT measure, value, rank_national, rank_regional, incomplete_reason FROM current_ranks "
                            "WHERE unit_code = '01' ORDER BY measure").fetchall()
        par = con.execute("SELECT par_index, par_group, incomplete_reason FROM current_par_index "
                          "WHERE unit_code = '01'").fetchall()
        sipas = con.execute("SELECT count(*), count(value), min(incomplete_reason) FROM current_sipas_indices "
                            "WHERE unit_code = '01'").fetchall()
        nation = con.execute("SELECT incomplete_reason FROM current_sipas_indices WHERE unit_level = 'nation' "
                             "AND level = 'sipas'").fetchall()
        ranked = con.execute("SELECT count(*) FROM current_ranks WHERE measure = 'sipas' AND rank_national IS NOT NULL"
                             ).fetchall()
    assert ranks == [(m, None, None, None, why) for m in ("par", "sipas", "sipas_policy", "sipas_service")]
    assert par == [(None, None, why)]
    assert sipas[0][1:] == (0, why) and sipas[0][0] > 0
    assert nation == [("mean of 62 of 63 provinces; incomplete: 01",)]
    assert ranked == [(62,)]


@pytest.mark.integration
def test_full_disk_under_work_is_the_flow_runs_state_message(tmp_path, prefect_harness, sample_year):
    """Under the Prefect server, a work folder that cannot be written fails the flow run with the same one
    line as its state message (and the runs record names that cause)."""
    import asyncio

    from prefect.client.orchestration import get_client

    from sipas_pipeline.errors import StorageError
    from sipas_pipeline.orchestration import annual_run

    (tmp_path / "plain.txt").write_text("x", encoding="utf-8")
    work = tmp_path / "plain.txt" / "work"
    db = tmp_path / "f.duckdb"
    state = annual_run(year=2024, raw=str(sample_year), db=str(db), work=str(work), return_state=True)
    assert state.is_failed()
    with pytest.raises(StorageError) as exc:
        state.result()
    line = str(exc.value)
    assert line.endswith(": not a directory") and str(tmp_path / "plain.txt") in line and "\n" not in line

    async def server_message() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(state.state_details.flow_run_id)).state.message

    assert asyncio.run(server_message()) == line
    with duckdb.connect(str(db), read_only=True) as con:  # the run record names the same cause
        assert con.execute("SELECT status, error FROM runs").fetchall() == [("failed", line)]

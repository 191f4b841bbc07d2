"""Bad-input suite, issue #19 (trust at every edge): what a run reads is what it keys and records, the release
folder, the DuckDB file verified before it is copied, the personal-data screen on quarantined values, entries of a
raw folder that are not files, and the smaller defects. Each case asserts the exact one-line message or rule, the
accounting, that nothing the tool did not make was touched, and no personal data. Pure functions and real files;
the flow-level cases are in test_bad_trust_runs.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kept_data
import polars as pl
import pytest
from test_bad_runs import cli, one_line_error, raw_copy
from test_publish import make_run, publish_sample

from sipas_pipeline import stages
from sipas_pipeline.duckdb_file import PREVIOUS, connect, verify
from sipas_pipeline.errors import DatabaseError, InputError
from sipas_pipeline.ingest import ingest_source
from sipas_pipeline.paths import MARKER
from sipas_pipeline.personal_data import screened
from sipas_pipeline.publish import publish, quarantine_frame, read_query
from sipas_pipeline.report.folder import WRITTEN, build_and_swap
from sipas_pipeline.stages import read_quarantine, read_results

ROOT = Path(__file__).resolve().parents[1]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the personal-data screen -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "why"), [
    ("0912345678", "a phone number"), ("+84 912 345 678", "a phone number"), ("091.234.5678", "a phone number"),
    ("001234567890", "an ID number"), ("123456789", "an ID number"), ("an.nguyen@example.vn", "an e-mail address"),
    ("Số 12 ngõ 34 phố Huế", "an address"), ("ngõ Riêng Tư", "an address"), ("Phường 7", "an address"),
    ("Nguyễn Văn Bí Mật", "a person's name"), ("Trần Thị B", "a person's name"),
    ("bà ấy nói rằng thủ tục quá lâu và phải đi lại nhiều lần", "long free text"),
])
def test_personal_values_are_redacted_with_the_reason(value, why):
    assert screened(value) == f"[redacted: {len(value)} characters] ({why})"


@pytest.mark.parametrize("value", ["24-01-000001", "01", "0008502", "00085", "01-U", "Hà Tây", "Thành phố Hồ Chí Minh",
                                   "7", "bốn", "2023-01-05", "12,5", "Cao Bằng", "Lâm Đồng", "x"])
def test_ordinary_quarantined_values_are_published_as_keyed(value):
    assert screened(value) == value


def test_quarantine_frame_publishes_no_personal_value(methodology):
    """An address in the province column and a phone in the PSU column: the published reasons and the row's JSON hold
    neither; the unresolved province is no code (null), its text screened."""
    address, phone = "Số 12 ngõ 34 phố Huế", "0912345678"
    q = pl.DataFrame({"source_file": ["citizen/a.csv"] * 2, "source_row": [2, 3], "batch_id": ["a"] * 2,
                      "file_sha256": ["ab" * 32] * 2, "form_id": ["24-01-900001", "24-01-900002"],
                      "province_code": [address, "01"], "psu": ["00085", phone], "source": ["citizen"] * 2,
                      "reasons": [[{"column": "province_code", "rule": "province_known", "value": address,
                                    "message": "not a province code, name or known alias"}],
                                  [{"column": "psu", "rule": "design_unknown", "value": phone,
                                    "message": "not a primary sampling unit (commune_code) of the sampling frame"}]]})
    out = quarantine_frame(q, methodology.provinces["province_code"].to_list())
    blob = json.dumps(out.to_dicts(), ensure_ascii=False)
    assert address not in blob and phone not in blob
    assert out["value"].to_list() == ["[redacted: 20 characters] (an address)", "[redacted: 10 characters] (a phone number)"]
    assert out["province_code"].to_list() == [None, "01"] and out["rule"].to_list() == ["province_known", "design_unknown"]


# ---- what was read is what is keyed ---------------------------------------------------------------------------------

def test_a_batch_replaced_after_the_key_is_refused_by_ingest(tmp_path, methodology, sample_year):
    """The key's hashes, then a batch re-sent before ingest reads it: ingest names the file and returns nothing."""
    raw = raw_copy(tmp_path, sample_year)
    before = stages.input_hashes(methodology, raw)
    batch = raw / "citizen" / "sipas2024_01_ha-noi.csv"
    batch.write_bytes(batch.read_bytes().replace(b"\r\n", b"\n"))
    (raw / "citizen" / "sipas2024_02_ha-giang.csv").unlink()
    shutil.copyfile(raw / "citizen" / "sipas2024_04_cao-bang.csv", raw / "citizen" / "sipas2024_99_new.csv")
    with pytest.raises(InputError) as exc:
        stages.ingest(methodology, raw, tmp_path / "work", expected=before)
    assert str(exc.value) == (
        f"{raw}: the raw folder changed between the run's first look and its reading: citizen/sipas2024_01_ha-noi.csv "
        "changed, citizen/sipas2024_02_ha-giang.csv deleted, citizen/sipas2024_99_new.csv added; nothing was published: "
        "run again once the folder is complete")


def test_ingest_records_the_hash_of_the_bytes_it_read(tmp_path, methodology, sample_year):
    raw = raw_copy(tmp_path, sample_year)
    ingested = stages.ingest(methodology, raw, tmp_path / "work", expected=stages.input_hashes(methodology, raw))
    on_disk = {p.relative_to(raw).as_posix(): sha(p) for s in ("citizen", "official", "appraisal")
               for p in (raw / s).iterdir()}
    assert ingested.hashes == on_disk
    assert {f["file"]: f["sha256"] for fs in ingested.files.values() for f in fs} == on_disk
    stages.check_unchanged(methodology, raw, ingested.hashes)  # nothing changed: no error
    (raw / "official" / "kobo_par_officials_2024.csv").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"the raw folder changed while the run read it: "
                                         r"official/kobo_par_officials_2024\.csv changed; nothing was published"):
        stages.check_unchanged(methodology, raw, ingested.hashes)


# ---- entries of a source folder that are not regular files ----------------------------------------------------------

def test_entries_that_are_not_files_are_listed_as_ignored(tmp_path, methodology, sample_year):
    raw = tmp_path / "raw"
    (raw / "citizen").mkdir(parents=True)
    shutil.copyfile(sample_year / "citizen" / "sipas2024_01_ha-noi.csv", raw / "citizen" / "a.csv")
    (raw / "citizen" / "broken.csv").symlink_to(tmp_path / "gone.csv")
    (raw / "citizen" / "loop.csv").symlink_to(raw / "citizen" / "loop.csv")
    os.mkfifo(raw / "citizen" / "pipe.csv")
    (raw / "citizen" / "folder.csv").mkdir()
    report = ingest_source(methodology, "citizen", raw, tmp_path / "bronze")
    assert [f["file"] for f in report.files] == ["citizen/a.csv"] and report.unreadable == []
    assert {i["file"]: i["reason"] for i in report.ignored} == {
        "citizen/broken.csv": "a broken symbolic link (its target is missing)",
        "citizen/loop.csv": "a symbolic link loop",
        "citizen/pipe.csv": "not a regular file (a named pipe (FIFO))",
        "citizen/folder.csv": "a folder named like an export file: only files are read"}


# ---- header-only officials' export, a missing re-sent file ------------------------------------------------------------

@pytest.mark.integration  # the stages over a copied raw year
def test_header_only_officials_export_is_no_rows_not_a_traceback(tmp_path, methodology, sample_year):
    raw = raw_copy(tmp_path, sample_year)
    officials = raw / "official" / "kobo_par_officials_2024.csv"
    officials.write_bytes(officials.read_bytes().splitlines(keepends=True)[0])
    report = stages.ingest_and_validate(methodology, raw, tmp_path / "work")
    assert report.sources["official"] == {"read": 0, "valid": 0, "quarantined": 0, "unreadable_files": 0}
    assert report.sources["citizen"]["read"] == report.sources["citizen"]["valid"] + report.sources["citizen"]["quarantined"]
    code, err = cli(["validate", "--year", "2024", "--raw", str(raw), "--work", str(tmp_path / "work2")])
    assert code == 0 and "official/kobo_par_officials_2024.csv header-only" in err


def test_missing_resent_file_keys_without_a_traceback(tmp_path, methodology, sample_year):
    from test_bad_runs import replace_line

    from sipas_pipeline.corrections import CorrectionError, corrections_key, overlay_raw, read_corrections

    fixes = read_corrections(methodology, [replace_line(tmp_path, "citizen/sipas2024_01_ha-noi.csv", "gone.csv")])
    assert len(corrections_key(fixes)) == 64  # was FileNotFoundError before the run could say why
    with pytest.raises(CorrectionError, match=r"re-sent file .*gone\.csv not found"):
        overlay_raw(methodology, sample_year, fixes, tmp_path / "overlay")


# ---- the release folder ----------------------------------------------------------------------------------------------

def writer(*names: str, fail: BaseException | None = None):
    """A release writer that writes `names` (then raises `fail`)."""
    def write(folder: Path) -> list[Path]:
        paths = []
        for n in names:
            (folder / n).write_text(f"release {n}", encoding="utf-8")
            paths.append(folder / n)
        if fail is not None:
            raise fail
        return paths
    return write


def test_release_keeps_the_analysts_files_across_releases(tmp_path):
    out = tmp_path / "release"
    build_and_swap(out, writer("a.html", "b.csv"))
    (out / "binh_luan_bo_truong.docx").write_text("commentary", encoding="utf-8")
    (out / "drafts").mkdir()
    (out / "drafts" / "v1.txt").write_text("draft", encoding="utf-8")
    build_and_swap(out, writer("a.html", "c.csv"))
    assert sorted(p.name for p in out.iterdir()) == [MARKER, WRITTEN, "a.html", "binh_luan_bo_truong.docx", "c.csv",
                                                     "drafts"]
    assert (out / "binh_luan_bo_truong.docx").read_text(encoding="utf-8") == "commentary"
    assert (out / "drafts" / "v1.txt").read_text(encoding="utf-8") == "draft"
    assert [p.name for p in tmp_path.iterdir()] == ["release"]  # nothing left beside it


def test_release_failure_leaves_the_previous_release(tmp_path):
    out = tmp_path / "release"
    build_and_swap(out, writer("a.html"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(RuntimeError):
        build_and_swap(out, writer("a.html", "b.csv", fail=RuntimeError("chart failed")))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["release"]


def test_release_refuses_to_overwrite_an_analysts_file_of_its_name(tmp_path):
    out = tmp_path / "release"
    build_and_swap(out, writer("a.html"))
    (out / "b.csv").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        build_and_swap(out, writer("a.html", "b.csv"))
    assert str(exc.value) == (f"{out}: holds b.csv, not written by sipas, where the release writes its own: nothing "
                              "replaced; move them away and run again")
    assert (out / "b.csv").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("kind", ["symlink", "file", "under_a_file", "sample_year", "work_folder"])
def test_release_target_refused_in_one_line(tmp_path, kind):
    out = tmp_path / "release"
    if kind == "symlink":
        (tmp_path / "real").mkdir()
        out.symlink_to(tmp_path / "real")
        want = f"{out}: is a symbolic link: give the folder itself with --out (nothing was written)"
    elif kind == "file":
        out.write_text("x", encoding="utf-8")
        want = f"{out}: is a file, not a folder: give a folder path with --out (nothing was written)"
    elif kind == "under_a_file":
        (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
        out = tmp_path / "notes.txt" / "release"
        want = f"{out}: {tmp_path / 'notes.txt'} is a file, not a folder: give a folder path with --out (nothing was written)"
    elif kind == "sample_year":
        out.mkdir()
        (out / MARKER).write_text("made by sipas: synthetic year; sipas may empty or replace this folder\n")
        (out / "citizen").mkdir()
        want = (f"{out}: made by sipas for another purpose (synthetic year), not a release: nothing written; choose "
                "another folder with --out")
    else:
        (out / "inputs-0123").mkdir(parents=True)
        (out / "runs").mkdir()
        want = (f"{out}: not empty and not made by sipas (holds inputs-0123, runs): nothing written; choose an empty or "
                "new folder with --out")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(InputError) as exc:
        build_and_swap(out, writer("a.html"))
    assert str(exc.value) == want
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_release_relative_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = build_and_swap(Path("rel/out"), writer("a.html"))
    assert files == [tmp_path / "rel" / "out" / "a.html"] and files[0].is_absolute() and files[0].is_file()


@pytest.mark.integration
def test_sipas_report_twice_keeps_a_user_file_and_refuses_a_sample_year(tmp_path, sample_db):
    out = tmp_path / "release"
    assert cli(["report", "--year", "2024", "--db", str(sample_db), "--out", str(out)])[0] == 0
    (out / "nhan_xet.md").write_text("Nhận xét của Bộ trưởng", encoding="utf-8")
    assert cli(["report", "--year", "2024", "--db", str(sample_db), "--out", str(out)])[0] == 0
    assert (out / "nhan_xet.md").read_text(encoding="utf-8") == "Nhận xét của Bộ trưởng"
    assert (out / "sipas_2024.xlsx").is_file()
    sample = tmp_path / "year"
    shutil.copytree(kept_data.tiny_year(2024), sample, ignore=shutil.ignore_patterns(kept_data.LIST))  # sipas sample's
    before = sorted(str(p) for p in sample.rglob("*"))
    one_line_error(cli(["report", "--year", "2024", "--db", str(sample_db), "--out", str(sample)]),
                   f"{sample}: made by sipas for another purpose (synthetic year), not a release: nothing written; "
                   "choose another folder with --out")
    assert sorted(str(p) for p in sample.rglob("*")) == before


FULL_RELEASE = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from sipas_pipeline.errors import UserError
from sipas_pipeline.report import build
try:
    build(Path({db!r}), 2024, Path({out!r}))
    print("built")
    build(Path({db!r}), 2024, Path({out!r}))
    print("built again")
except UserError as exc:
    print(exc)
"""


@pytest.mark.integration
def test_release_on_a_full_disk_leaves_the_previous_release(tmp_path, sample_db):
    """A real ENOSPC: a small tmpfs in a private mount namespace holds one release but not a second beside it."""
    scratch = tmp_path / "scratch"
    build(sample_db, scratch)
    size_kb = sum(p.stat().st_size for p in scratch.rglob("*")) // 1024 * 3 // 2 + 64
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "release"
    code = FULL_RELEASE.format(tests=str(ROOT / "tests"), db=str(sample_db), out=str(out))
    script = (f"mount -t tmpfs -o size={size_kb}k tmpfs {disk} && {sys.executable} -c \"$CODE\" && "
              f"ls -a {disk}")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=dict(os.environ, CODE=code), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    built, line, *listing = proc.stdout.splitlines()
    assert "Traceback" not in proc.stderr
    assert built == "built"
    assert line == (f"{out}: cannot write the release: no space left on device; the previous release is as it was: "
                    "free space there or choose another --out")
    assert listing == [".", "..", "release"]  # the half-written release was removed


def build(db: Path, out: Path) -> None:
    from sipas_pipeline.report import build as build_release

    build_release(db, 2024, out)


# ---- the DuckDB file, verified before it is copied or written ---------------------------------------------------------

def damaged_in_the_middle(published: Path, folder: Path) -> Path:
    """A copy of `published` with one block in use damaged in the middle of the file: it opens (its header and catalog
    are intact), but reading a table meets the bad checksum. Found by trying blocks from the middle on."""
    size = published.stat().st_size
    data = published.read_bytes()
    db = folder / "sipas.duckdb"
    for block in range((size - 12288) // 262144 // 2, (size - 12288) // 262144):
        spoilt = bytearray(data)
        at = 12288 + block * 262144 + 4096
        spoilt[at:at + 64] = b"\xff" * 64
        db.write_bytes(bytes(spoilt))
        try:
            con = connect(db, read_only=True)
        except DatabaseError:
            continue
        try:
            verify(con, db)
        except DatabaseError:
            return db
        finally:
            con.close()
    raise AssertionError("no block in use found in the second half of the file")


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, methodology, sample_work) -> Path:
    db = tmp_path_factory.mktemp("three_runs") / "sipas.duckdb"
    for i in range(3):
        publish_sample(db, methodology, sample_work, f"run-{i}")
    return db


@pytest.mark.integration
@pytest.mark.parametrize("damage", ["mid_file_block", "truncated_past_header"])
def test_damaged_file_refused_and_left_byte_identical(tmp_path, three_runs, sample_year, damage):
    folder = tmp_path / "d"
    folder.mkdir()
    if damage == "mid_file_block":
        db = damaged_in_the_middle(three_runs, folder)
    else:
        db = folder / "sipas.duckdb"
        db.write_bytes(three_runs.read_bytes()[: int(three_runs.stat().st_size * 0.6)])
    before = sha(db)
    shutil.copyfile(three_runs, folder / f"sipas.duckdb{PREVIOUS}")  # the last good copy the swap keeps
    from test_database_safety import sipas

    proc = sipas(tmp_path, "run", "--year", "2024", "--raw", str(sample_year), "--db", str(db))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().removeprefix("error: ")
    assert line.startswith(f"{db}: is a damaged DuckDB file (") and "\n" not in line
    assert line.endswith(f"): nothing was written to it; restore the last good copy (the file before the last publish) "
                         f"with `cp {db}{PREVIOUS} {db}`, or restore it from a backup, or publish into another --db")
    assert sha(db) == before and sorted(p.name for p in folder.iterdir()) == ["sipas.duckdb", f"sipas.duckdb{PREVIOUS}"]


@pytest.mark.integration
def test_db_through_a_symlink_publishes_into_its_target(tmp_path, methodology, sample_work):
    target = tmp_path / "real" / "sipas.duckdb"
    target.parent.mkdir()
    publish_sample(target, methodology, sample_work, "run-a")
    link = tmp_path / "link.duckdb"
    link.symlink_to(target)
    publish(link, methodology, make_run("run-b", sample_work), read_results(sample_work["work"]),
            read_quarantine(sample_work["work"]))
    assert link.is_symlink() and link.resolve() == target
    assert read_query(target, "SELECT run_id FROM runs ORDER BY run_id") == [("run-a",), ("run-b",)]
    assert sorted(p.name for p in target.parent.iterdir()) == ["sipas.duckdb", "sipas.duckdb.lock",
                                                               f"sipas.duckdb{PREVIOUS}"]
    assert read_query(target.parent / f"sipas.duckdb{PREVIOUS}", "SELECT run_id FROM runs") == [("run-a",)]
    code, _ = cli(["runs", "list", "--db", str(link)])
    assert code == 0


# ---- methodology init on a full disk ----------------------------------------------------------------------------------

INIT = """
from pathlib import Path
from sipas_pipeline.errors import UserError
from sipas_pipeline.methodology.scaffold import init_year
try:
    init_year(2026, 2024, Path({root!r}))
except UserError as exc:
    print(exc)
"""


@pytest.mark.integration
def test_methodology_init_on_a_full_disk_leaves_nothing_behind(tmp_path):
    disk = tmp_path / "schemas"
    disk.mkdir()
    src = ROOT / "schemas" / "2024"
    size_kb = sum(p.stat().st_size for p in src.rglob("*")) // 1024 * 3 // 2
    script = (f"mount -t tmpfs -o size={size_kb}k tmpfs {disk} && cp -r {src} {disk}/2024 && "
              f"{sys.executable} -c \"$CODE\" && ls -a {disk}")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=dict(os.environ, CODE=INIT.format(root=str(disk))),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line, *listing = proc.stdout.splitlines()
    assert line == (f"{disk / '2026'}: cannot write the new methodology folder: no space left on device; nothing was "
                    "left behind: free space there and run again")
    assert listing == [".", "..", "2024"]


# ---- runs diff: ranks that did not move are not listed as moved ---------------------------------------------------------

@pytest.mark.integration
def test_runs_diff_lists_only_ranks_that_moved(tmp_path, methodology, sample_work):
    db = tmp_path / "sipas.duckdb"
    publish_sample(db, methodology, sample_work, "run-a")
    tables = read_results(sample_work["work"])
    ranks = tables["ranks"]
    first = ranks.filter(pl.col("measure") == "sipas").sort("rank_national")["province_code"][0]
    tables["ranks"] = ranks.with_columns(pl.when((pl.col("measure") == "sipas") & (pl.col("province_code") == first))
                                         .then(pl.col("value") + 0.001).otherwise(pl.col("value")).alias("value"))
    publish(db, methodology, make_run("run-b", sample_work), tables, read_quarantine(sample_work["work"]))
    from typer.testing import CliRunner

    from sipas_pipeline.cli import app

    out = CliRunner().invoke(app, ["runs", "diff", "run-a", "run-b", "--db", str(db)])
    assert out.exit_code == 0 and "1 values moved ({'rank': 1})" in out.stdout
    assert "Ranks (xếp hạng)" not in out.stdout  # its value moved, its rank did not


@pytest.mark.integration
def test_published_quarantine_holds_no_address_or_phone(tmp_path, methodology, sample_work):
    """An address typed into the province column and a phone into the PSU column, through publish into DuckDB: the
    views show the redaction and the reason, never the text; the form is counted under no province."""
    address, phone = "Số 12 ngõ 34 phố Huế", "0912345678"
    q = read_quarantine(sample_work["work"])
    base = q.filter(pl.col("source") == "citizen").head(2)
    bad = base.with_columns(
        pl.Series("province_code", [address, base["province_code"][1]]), pl.Series("psu", [base["psu"][0], phone]),
        pl.Series("source_row", [900001, 900002], dtype=pl.Int64),
        pl.Series("reasons", [[{"column": "province_code", "rule": "province_known", "value": address,
                                "message": "not a province code, name or known alias"}],
                              [{"column": "psu", "rule": "design_unknown", "value": phone,
                                "message": "not a primary sampling unit (commune_code) of the sampling frame"}]],
                  dtype=base.schema["reasons"]))
    db = tmp_path / "sipas.duckdb"
    publish(db, methodology, make_run("run-pii", sample_work), read_results(sample_work["work"]), pl.concat([q, bad]))
    rows = read_query(db, """SELECT unit_code, province_text, messages FROM current_quarantined_forms
                             WHERE source_row IN (900001, 900002) ORDER BY source_row""")
    assert rows[0][:2] == (None, "[redacted: 20 characters] (an address)")
    dump = read_query(db, "SELECT string_agg(coalesce(value, '') || record, '|') FROM quarantine")[0][0]
    assert address not in dump and phone not in dump and "[redacted: 10 characters] (a phone number)" in dump


FIRST_START = """
import os, sys, time
os.environ["PREFECT_HOME"] = sys.argv[1]
from sipas_pipeline.orchestration.server import first_start
with first_start():
    print("in", time.time(), flush=True)
    time.sleep(1.0)
    print("out", time.time(), flush=True)
"""


def test_first_start_on_a_new_prefect_home_is_serialised(tmp_path):
    """Two first runs on a new Prefect home: the second's server starts only after the first's has (its migration
    done); the marker then lets later starts go without the lock."""
    home = tmp_path / "prefect"
    procs = [subprocess.Popen([sys.executable, "-c", FIRST_START, str(home)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    spans = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        lines = dict(line.split() for line in out.splitlines())
        spans.append((float(lines["in"]), float(lines["out"])))
    (_, a_out), (b_in, _) = sorted(spans)
    assert b_in >= a_out  # never both inside
    assert (home / "sipas-migrated.json").is_file() and not (home / ".sipas-migrated").exists()  # one marker

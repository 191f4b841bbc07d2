"""Every figure of the release equals the database (issue #19): each sheet of the workbook and each CSV is read
back and compared, cell by cell, with the analyst views of the DuckDB file it was made from. The year published
has quarantined forms whose province could not be resolved and a withdrawal (a correction), so the quarantine
counts must keep them apart: one row per source, kind and resolved province, every form once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.corrections import apply_corrections, read_corrections
from sipas_pipeline.publish import publish, read_query
from sipas_pipeline.report import build
from sipas_pipeline.report.excel import HEADERS, MEASURE_SHEETS
from sipas_pipeline.stages import compute, read_quarantine, read_results, run_inputs

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
LABEL = {v: k for k, v in HEADERS.items()}  # bilingual header -> column


@pytest.fixture(scope="module")
def release(tmp_path_factory, methodology, sample_work) -> tuple[Path, Path]:
    """The sample year with the example corrections (a withdrawal among them) published, and its release."""
    tmp = tmp_path_factory.mktemp("release_counts")
    fixes = read_corrections(methodology, [ROOT / "sample_data" / "corrections" / "2024_01_ha-noi.csv"])
    out = StageFolder(tmp / "corrected")
    fixed = apply_corrections(methodology, StageFolder(sample_work["work"]), out, fixes, sample_work["checked"]["batches"])
    compute(methodology, out)
    run = {"run_id": "2024-counts", "started_at": datetime.now(UTC), "parameters": {}, "code_version": "test",
           "timings": [], "inputs": run_inputs(sample_work["ingested"], sample_work["checked"]),
           "accounting": [{"source": s} | c | {"unreadable_files": 0} for s, c in fixed["sources"].items()]}
    db = tmp / "sipas.duckdb"
    publish(db, methodology, run, read_results(out), read_quarantine(out), corrections=fixed["applied"])
    build(db, 2024, tmp / "release")
    return db, tmp / "release"


def sheets(folder: Path) -> dict[str, pl.DataFrame]:
    """Every sheet of the workbook, its columns named back from the bilingual headers."""
    book = pl.read_excel(folder / "sipas_2024.xlsx", sheet_id=0, engine="calamine", infer_schema_length=0)
    return {name: frame.rename({c: LABEL.get(c, c) for c in frame.columns}) for name, frame in book.items()}


def csv(folder: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(folder / f"sipas_2024_{name}.csv", infer_schema=False)


def num(v: str | None) -> float | None:
    return None if v in (None, "") else float(v)


def rank(v: str | None) -> int | None:
    return None if v in (None, "") else int(float(v))


def test_quarantine_counts_equal_the_database(release):
    db, folder = release
    forms = read_query(db, """SELECT f.source, f.unit_code IN (SELECT unit_code FROM units WHERE year = 2024) AS known,
                                     f.unit_code, f.rules FROM current_quarantined_forms f WHERE year = 2024""")
    kind = {True: "rút phiếu (withdrawn)", False: "không hợp lệ (validation)"}
    want = Counter((s, kind["withdrawn" in rules], code if known else None) for s, known, code, rules in forms)
    accounted = sum(r[0] for r in read_query(
        db, "SELECT a.quarantined FROM (SELECT unnest(accounting) AS a FROM current_runs WHERE year = 2024)"))
    assert sum(want.values()) == len(forms) == accounted
    assert any(k[1].startswith("rút") for k in want) and any(k[2] is None for k in want)  # both cases are there
    for frame in (sheets(folder)["Cách ly (Quarantine)"], csv(folder, "quarantine")):
        got = Counter()
        for r in frame.iter_rows(named=True):
            got[(r["source"], r["kind"], r["unit_code"] or None)] += int(float(r["forms"]))
        assert got == want
        assert frame.filter(pl.col("unit_code").is_null() | (pl.col("unit_code") == ""))["unit_name_vi"].unique().to_list() \
            == ["(không xác định được tỉnh / province not resolved)"]


def test_rankings_equal_the_database(release):
    """Each measure's sheet (provinces, then regions and the nation) and the rankings CSV against current_ranks."""
    db, folder = release
    want = {(m, c): (v, k) for m, c, v, k in read_query(
        db, "SELECT measure, unit_code, value, rank_national FROM current_ranks WHERE year = 2024")}
    book = sheets(folder)
    for measure, name in MEASURE_SHEETS.items():
        frame = book[name]
        got = {(measure, r["unit_code"]): (num(r["value"]), rank(r["rank_national"])) for r in frame.iter_rows(named=True)
               if (measure, r["unit_code"]) in want}
        assert got.keys() == {k for k in want if k[0] == measure} and frame.height == len(got) + 7  # + regions, nation
        for k, (v, place) in got.items():
            assert place == want[k][1] and ((want[k][0] is None and v is None) or v == pytest.approx(want[k][0], rel=1e-9))
    frame = csv(folder, "rankings")
    got = {(r["measure"], r["unit_code"]): (num(r["value"]), rank(r["rank_national"])) for r in frame.iter_rows(named=True)}
    assert got.keys() == want.keys()
    for k, (v, place) in want.items():
        assert got[k][1] == place and ((v is None and got[k][0] is None) or got[k][0] == pytest.approx(v, rel=1e-9))


def test_indicators_equal_the_database(release):
    """The indicators CSV (every unit, long) and the sheet (regions and the nation) against the view."""
    db, folder = release
    want = {(lv, c, i): (v, lo, n) for lv, c, i, v, lo, n in read_query(
        db, "SELECT unit_level, unit_code, indicator_id, value, ci_low, n FROM current_indicator_values WHERE year = 2024")}
    frame = csv(folder, "indicators")
    got = {(r["unit_level"], r["unit_code"], r["indicator_id"]): (num(r["value"]), num(r["ci_low"]), rank(r["n"]))
           for r in frame.iter_rows(named=True)}
    assert got.keys() == want.keys()
    for k, (v, lo, n) in want.items():
        assert got[k][2] == n and all(g == pytest.approx(w, rel=1e-9) if w is not None else g is None
                                      for g, w in zip(got[k][:2], (v, lo), strict=True))
    sheet = sheets(folder)["Chỉ tiêu (Indicators)"]
    areas = {(c, i): v for (lv, c, i), (v, _, _) in want.items() if lv != "province"}
    got = {(r["unit_code"], r["indicator_id"]): num(r["value"]) for r in sheet.iter_rows(named=True)}
    assert got.keys() == areas.keys()
    assert all(got[k] == pytest.approx(v, rel=1e-9) if v is not None else got[k] is None for k, v in areas.items())


def test_par_points_equal_the_database(release):
    """The PAR CSV (fields and criteria of every unit) and the sheet (fields) against current_par_points."""
    db, folder = release
    want = {(ul, c, lv, n): p for ul, c, lv, n, p in read_query(db, """
        SELECT unit_level, unit_code, level, node, points FROM current_par_points
        WHERE year = 2024 AND level IN ('field', 'criterion')""")}
    frame = csv(folder, "par")
    got = {(r["unit_level"], r["unit_code"], r["level"], r["node"]): num(r["points"]) for r in frame.iter_rows(named=True)}
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(v, rel=1e-9) if v is not None else got[k] is None for k, v in want.items())
    fields = {(c, n): p for (_, c, lv, n), p in want.items() if lv == "field"}
    got = {(r["unit_code"], r["node"]): num(r["points"]) for r in sheets(folder)["CCHC (PAR)"].iter_rows(named=True)}
    assert got.keys() == fields.keys()
    assert all(got[k] == pytest.approx(v, rel=1e-9) for k, v in fields.items())


def test_run_record_equals_the_database(release):
    db, folder = release
    run = sheets(folder)["Lần chạy (Run)"]
    content = dict(zip(run["field"], run["content"], strict=True))
    inputs = read_query(db, """SELECT i.source, i.file, i.sha256, i.read, i.valid, i.quarantined
                               FROM (SELECT unnest(inputs) AS i FROM current_runs WHERE year = 2024)""")
    for s, f, sha, r, v, q in inputs:
        assert content[f"input {s}: {f}"] == f"sha256 {sha}; read {r}, valid {v}, quarantined {q}"
    for s, r, v, q in read_query(db, """SELECT a.source, a.read, a.valid, a.quarantined
                                       FROM (SELECT unnest(accounting) AS a FROM current_runs WHERE year = 2024)"""):
        assert content[f"accounting {s}"] == f"read {r} = valid {v} + quarantined {q}"
    assert content["run_id"] == "2024-counts"

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
from sipas_pipeline.report.excel import HEADERS
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
    db, folder = release
    want = {(m, c): (v, k) for m, c, v, k in read_query(
        db, "SELECT measure, unit_code, value, rank_national FROM current_ranks WHERE year = 2024")}
    for frame in (sheets(folder)["Xếp hạng (Rankings)"], csv(folder, "rankings")):
        got = {(r["measure"], r["unit_code"]): (num(r["value"]), rank(r["rank_national"]))
               for r in frame.iter_rows(named=True)}
        assert got.keys() == want.keys()
        for k, (v, place) in want.items():
            assert got[k][1] == place and ((v is None and got[k][0] is None) or got[k][0] == pytest.approx(v, rel=1e-9))
        pub = {(r["measure"], r["unit_code"]): num(r["value_published"]) for r in frame.iter_rows(named=True)}
        assert all(pub[k] == (None if v is None else round(v, 2)) for k, (v, _) in want.items())


def test_indicators_equal_the_database(release):
    db, folder = release
    want = {(c, i): v for c, i, v in read_query(db, """SELECT unit_code, indicator_id, value FROM current_indicator_values
                                                      WHERE year = 2024 AND unit_level = 'province'""")}
    book = pl.read_excel(folder / "sipas_2024.xlsx", sheet_name="Chỉ tiêu (Indicators)", engine="calamine",
                         infer_schema_length=0)
    for frame in (book.rename({c: c.split(" — ")[0] for c in book.columns}), csv(folder, "indicators")):
        frame = frame.rename({c: LABEL.get(c, c) for c in frame.columns})
        got = {(r["unit_code"], i): num(r[i]) for r in frame.iter_rows(named=True) for i in frame.columns
               if i not in ("unit_code", "unit_name_vi")}
        assert got.keys() == want.keys()
        assert all(got[k] == pytest.approx(v, rel=1e-9) if v is not None else got[k] is None for k, v in want.items())


def test_par_points_equal_the_database(release):
    db, folder = release
    want = {(ul, c, lv, n): p for ul, c, lv, n, p in read_query(db, """
        SELECT unit_level, unit_code, level, node, points FROM current_par_points
        WHERE year = 2024 AND level IN ('field', 'criterion')""")}
    for frame in (sheets(folder)["CCHC (PAR)"], csv(folder, "par")):
        got = {(r["unit_level"], r["unit_code"], r["level"], r["node"]): num(r["points"]) for r in frame.iter_rows(named=True)}
        assert got.keys() == want.keys()
        assert all(got[k] == pytest.approx(v, rel=1e-9) if v is not None else got[k] is None for k, v in want.items())


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

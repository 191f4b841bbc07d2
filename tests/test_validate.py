"""Ingest + validate on a full generated year, against the generator's defect manifest."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.stages import InputError, ingest_and_validate
from sipas_pipeline.validate import validate_source


@pytest.fixture(scope="module")
def validated(full_year_work):
    """The validation report and work folder of the full-size year (the session's, see conftest)."""
    report, _, work = full_year_work
    return report, work


def _reasons(work: Path) -> pl.DataFrame:
    frames = [pl.read_parquet(StageFolder(work).quarantine(s)).select(
        "source_file", "source_row", pl.col("subcriterion_id" if s == "appraisal" else "form_id").alias("key"), "reasons")
        for s in ("citizen", "official", "appraisal")]
    return (pl.concat(frames).explode("reasons").unnest("reasons")
            .group_by("source_file", "source_row", "key").agg(pl.col("rule").alias("found")))


def test_quarantine_matches_the_manifest(validated, full_year):
    _, work = validated
    defects = pl.read_csv(full_year / "truth" / "defects.csv")
    found = _reasons(work)
    joined = defects.join(found, left_on=["file", "row"], right_on=["source_file", "source_row"], how="left")
    quarantine = joined.filter(pl.col("action") == "quarantine")
    assert quarantine.height > 500
    missed = quarantine.filter(pl.col("found").is_null())
    assert missed.height == 0, missed.head()
    conflicting = defects.filter(pl.col("rule") == "conflicting_duplicate")["value"].to_list()
    # an exact copy of a form that a third copy contradicts is a conflict too (every copy quarantined)
    wrong = [r for r in quarantine.iter_rows(named=True) if r["rule"] not in r["found"]
             and not (r["rule"] == "duplicate_key" and r["value"] in conflicting and "conflicting_duplicate" in r["found"])]
    assert wrong == []
    repaired = joined.filter(pl.col("action") == "repair")
    assert repaired.height > 100 and repaired["found"].null_count() == repaired.height
    clean = found.join(defects, left_on=["source_file", "source_row"], right_on=["file", "row"], how="anti")
    # the other copies of a form delivered twice with different answers are quarantined too (issue #12)
    assert len(conflicting) > 50
    others = clean.filter(pl.col("key").is_in(conflicting))
    assert others.height >= len(set(conflicting)) and (others["found"].list.first() == "conflicting_duplicate").all()
    assert clean.height == others.height, clean.join(others, on=["source_file", "source_row"], how="anti").head()


def test_row_accounting(validated):
    report, work = validated
    for source, c in report["sources"].items():
        assert c["read"] == c["valid"] + c["quarantined"]
        silver = pl.read_parquet(StageFolder(work).silver(source))
        quarantine = pl.read_parquet(StageFolder(work).quarantine(source))
        assert silver.height == c["valid"] and quarantine.height == c["quarantined"]
    assert report["sources"]["citizen"]["read"] == 36_525
    assert report["sources"]["official"]["read"] == 49_159
    for b in report["batches"]:
        assert b["read"] == b["valid"] + b["quarantined"]


def test_duplicates_keep_the_first_and_name_it(validated, full_year):
    _, work = validated
    q = pl.read_parquet(StageFolder(work).quarantine("citizen")).explode("reasons").unnest("reasons")
    dup = q.filter(pl.col("rule") == "duplicate_key")
    assert dup.height > 0 and dup["message"].str.contains(r"^exact copy of the row first at citizen/.+:\d+").all()
    conflict = q.filter(pl.col("rule") == "conflicting_duplicate")
    assert conflict.height > 0 and conflict["message"].str.contains(r"copies at citizen/.+:\d+, citizen/.+:\d+").all()
    silver = pl.read_parquet(StageFolder(work).silver("citizen"))
    assert silver["form_id"].is_unique().all()


def test_silver_is_typed_and_repaired(validated, full_year, methodology):
    """Typed columns; every citizen's province is a code of the methodology and the right one: the province in
    the form id (24-PP-NNNNNN, written by the generator before it spoils the province text), also for the rows
    whose province it spelled another way (defect kind province_name_variant: "Ha Noi", "TUYÊN QUANG", ...)."""
    _, work = validated
    silver = pl.read_parquet(StageFolder(work).silver("citizen"))
    assert silver.schema["interview_date"] == pl.Date and silver.schema["s_p_eco_content"] == pl.Int64
    assert silver.schema["weight"] == pl.Float64
    assert set(silver["province_code"]) == set(methodology.provinces["province_code"])
    in_form_id = silver["form_id"].str.split("-").list.get(1)
    assert (silver["province_code"] == in_form_id).all(), silver.filter(pl.col("province_code") != in_form_id).head()
    defects = pl.read_csv(full_year / "truth" / "defects.csv")
    variants = defects.filter((pl.col("kind") == "province_name_variant") & (pl.col("source") == "citizen"))
    repaired = variants.join(silver, left_on=["file", "row"], right_on=["source_file", "source_row"])
    assert repaired.height == variants.height > 20  # each respelled row resolved and kept (then checked above)


def test_no_personal_data_in_any_parquet(validated, full_year):
    _, work = validated
    raw = full_year / "citizen"
    names, phones = set(), set()
    for path in raw.glob("*.csv"):
        text = path.read_bytes().decode("utf-8-sig", errors="ignore")
        lines = text.splitlines()
        if "Họ và tên" not in lines[0]:
            continue
        header = lines[0].split(",")
        i, j = header.index("Họ và tên"), header.index("Số điện thoại")
        for line in lines[1:50]:
            cells = line.split(",")
            names.add(cells[i])
            phones.add(cells[j])
    assert len(names) > 20 and len(phones) > 20
    forbidden = {"full_name", "phone", "id_number", "address", "email"}
    needles = sorted(names | phones)
    parquets = list(work.rglob("*.parquet"))
    assert len(parquets) > 5
    for parquet in parquets:
        frame = pl.read_parquet(parquet)
        assert not forbidden & set(frame.columns), parquet
        cells = pl.concat([c.unique().cast(pl.Utf8) for c in frame.select(pl.col(pl.Utf8)).iter_columns()],
                          how="vertical") if frame.select(pl.col(pl.Utf8)).width else pl.Series([], dtype=pl.Utf8)
        hits = cells.filter(cells.str.contains_any(needles))  # any text containing a name or phone (Aho-Corasick)
        assert hits.len() == 0, (parquet, hits.head(3).to_list())


@pytest.mark.integration
def test_unreadable_files_are_reported_and_the_rest_goes_on(tmp_path, sample_year, methodology):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(sample_year, raw)
    (raw / "citizen" / "zz_empty.csv").write_bytes(b"")
    (raw / "citizen" / "zz_junk.xlsx").write_bytes(b"garbage")
    (raw / "citizen" / "zz_cols.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    report = ingest_and_validate(methodology, raw, tmp_path / "work")
    bad = {u["file"]: u["reason"] for u in report["unreadable_files"]}
    assert bad["citizen/zz_empty.csv"] == "empty file"
    assert "cannot open workbook" in bad["citizen/zz_junk.xlsx"]
    assert bad["citizen/zz_cols.csv"].startswith("missing required columns: form_id, province_code")
    assert report["sources"]["citizen"]["read"] == 1096 and report["sources"]["citizen"]["unreadable_files"] == 3


@pytest.mark.integration
def test_input_errors(tmp_path, methodology, sample_year):
    with pytest.raises(InputError, match="no such folder"):
        ingest_and_validate(methodology, tmp_path / "nope", tmp_path / "w")
    import shutil
    raw = tmp_path / "raw"
    shutil.copytree(sample_year, raw)
    shutil.rmtree(raw / "official")
    with pytest.raises(InputError, match=r"source 'official': no export files in .*official"):
        ingest_and_validate(methodology, raw, tmp_path / "w")
    (raw / "official").mkdir()
    (raw / "official" / "junk.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(InputError, match=r"source 'official': no readable file .*junk.xlsx: cannot open workbook"):
        ingest_and_validate(methodology, raw, tmp_path / "w")


def test_every_reason_of_a_row_is_kept(methodology, tmp_path):
    from sipas_pipeline.ingest import to_bronze

    frame = pl.DataFrame({"Mã tỉnh": ["14", "14"], "Mã TCTP": ["1.1.1", "9.9.9"],
                          "Điểm tự đánh giá": ["x", "0.5"], "Điểm thẩm định": ["5", "-1"]})
    bronze, _ = to_bronze(frame, methodology, "appraisal", "appraisal/a.csv", "0" * 64)
    result = validate_source(methodology, "appraisal", bronze)
    assert result.silver.height == 0 and result.quarantine.height == 2
    rules = {r["source_row"]: sorted(x["rule"] for x in r["reasons"]) for r in result.quarantine.to_dicts()}
    assert rules == {2: ["max_points", "not_a_number"], 3: ["range", "reference"]}


@pytest.mark.integration
def test_cli_json(sample_year, tmp_path):
    """`sipas validate --json` (the command line in this process; tests/test_bad_exports.py and the packaging test
    run it in its own)."""
    from typer.testing import CliRunner

    from sipas_pipeline.cli import app

    out = CliRunner().invoke(app, ["validate", "--year", "2024", "--raw", str(sample_year), "--work", str(tmp_path),
                                   "--json"])
    assert out.exit_code == 0 and out.exception is None, out.output
    data = json.loads(out.stdout)
    assert set(data["sources"]) == {"citizen", "official", "appraisal"}
    c = data["sources"]["citizen"]
    assert c["read"] == c["valid"] + c["quarantined"] == 1096
    assert data["unreadable_files"] == []
    bad = CliRunner().invoke(app, ["validate", "--raw", str(tmp_path / "none")])
    assert bad.exit_code == 2 and "no such folder" in bad.stderr and bad.stderr.count("\n") == 1

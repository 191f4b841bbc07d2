"""Corrections: the file format, applying them between validate and compute, and the errors that stop a run."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.corrections import COLUMNS, CorrectionError, apply_corrections, overlay_raw, read_corrections
from sipas_pipeline.validate import read_bronze

WHO = {"reason": "Phiếu nhập sai", "requested_by": "Sở Nội vụ Hà Nội", "requested_at": "2025-01-15"}


def write_corrections(path: Path, rows: list[dict]) -> Path:
    """A correction file as a province would send it."""
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" for k in COLUMNS} | WHO | r)
    return path


def bronze_forms(sample_work: dict, province: str, n: int, where: pl.Expr | None = None) -> list[dict]:
    """The first n valid citizens' forms of a province, as bronze text."""
    work = sample_work["work"]
    silver = pl.read_parquet(StageFolder(work).silver("citizen")).filter(pl.col("province_code") == province)
    bronze = read_bronze(StageFolder(work), "citizen").join(silver.select("source_file", "source_row"),
                                                         on=["source_file", "source_row"])
    return bronze.filter(where if where is not None else pl.lit(True)).head(n).to_dicts()


def test_format_problems_name_file_and_line(tmp_path, methodology):
    path = write_corrections(tmp_path / "bad.csv", [
        {"action": "fix", "source": "citizen", "form_id": "x"},
        {"action": "set", "source": "citizen", "form_id": "x", "field": "full_name", "new_value": "A"},
        {"action": "set", "source": "citizen", "form_id": "x", "field": "form_id", "new_value": "y"},
        {"action": "set", "source": "citizen", "form_id": "x", "field": "s_s_overall", "requested_at": "15/01/2025"},
        {"action": "withdraw", "source": "people", "form_id": "x", "reason": ""},
    ])
    with pytest.raises(CorrectionError) as exc:
        read_corrections(methodology, [path, tmp_path / "missing.csv"])
    lines = str(exc.value).splitlines()
    assert f"{path}:2: unknown action 'fix'" in lines[0]
    assert any(f"{path}:3: field 'full_name' holds personal data" in x for x in lines)
    assert any(f"{path}:4: field 'form_id' is the form's key" in x for x in lines)
    assert any(f"{path}:5: requested_at '15/01/2025' is not a date" in x for x in lines)
    assert any(f"{path}:6: unknown source 'people'" in x for x in lines)
    assert any(f"{path}:6: reason is required" in x for x in lines)
    assert any("missing.csv: no such correction file" in x for x in lines)


def test_set_move_withdraw_applied_and_validated_again(tmp_path, methodology, sample_work):
    a, b, c = bronze_forms(sample_work, "01", 3, pl.col("s_s_overall").is_in(["1", "2", "3", "4"]))
    frame = methodology.sampling_frame.filter(pl.col("province_code") == "01")
    other = frame.filter(pl.col("village_code") != c["village_code"]).row(0, named=True)
    path = write_corrections(tmp_path / "fix.csv", [
        {"action": "set", "source": "citizen", "form_id": a["form_id"], "field": "s_s_overall",
         "old_value": a["s_s_overall"], "new_value": "5"},
        {"action": "withdraw", "source": "citizen", "form_id": b["form_id"]},
        {"action": "move", "source": "citizen", "form_id": c["form_id"], "field": "village_code",
         "old_value": c["village_code"], "new_value": other["village_code"]},
    ])
    out = apply_corrections(methodology, sample_work["work"], tmp_path / "out", read_corrections(methodology, [path]))
    assert [x["outcome"] for x in out["applied"]] == ["valid", "withdrawn", "valid"]
    silver = pl.read_parquet(StageFolder(tmp_path / "out").silver("citizen"))
    quarantine = pl.read_parquet(StageFolder(tmp_path / "out").quarantine("citizen"))
    assert silver.filter(pl.col("form_id") == a["form_id"])["s_s_overall"].to_list() == [5]
    moved = silver.filter(pl.col("form_id") == c["form_id"]).row(0, named=True)
    assert (moved["village_code"], moved["commune_code"], moved["district_code"]) == (
        other["village_code"], other["commune_code"], other["district_code"])
    assert silver.filter(pl.col("form_id") == b["form_id"]).height == 0
    gone = quarantine.filter(pl.col("form_id") == b["form_id"])["reasons"].to_list()
    assert gone[0][0]["rule"] == "withdrawn" and "Sở Nội vụ Hà Nội" in gone[0][0]["message"]
    before = sample_work["checked"]["sources"]["citizen"]
    assert out["sources"]["citizen"] == {"read": before["read"], "valid": before["valid"] - 1,
                                         "quarantined": before["quarantined"] + 1}
    # rows untouched by the corrections are unchanged
    old = pl.read_parquet(StageFolder(sample_work["work"]).silver("citizen"))
    untouched = ~pl.col("form_id").is_in([a["form_id"], b["form_id"], c["form_id"]])
    assert silver.filter(untouched).equals(old.filter(untouched))


def test_conflicts_stop_with_one_message_each_and_write_nothing(tmp_path, methodology, sample_work):
    a, b = bronze_forms(sample_work, "01", 2)
    wrong = "4" if a["s_s_overall"] != "4" else "3"
    path = write_corrections(tmp_path / "fix.csv", [
        {"action": "set", "source": "citizen", "form_id": a["form_id"], "field": "s_s_overall",
         "old_value": wrong, "new_value": "5"},
        {"action": "set", "source": "citizen", "form_id": "24-99-999999", "field": "s_s_overall",
         "old_value": "1", "new_value": "5"},
        {"action": "set", "source": "citizen", "form_id": b["form_id"], "field": "s_s_overall",
         "old_value": b["s_s_overall"] or "", "new_value": "7"},
        {"action": "move", "source": "citizen", "form_id": b["form_id"], "old_value": b["village_code"],
         "new_value": "9999999"},
    ])
    with pytest.raises(CorrectionError) as exc:
        apply_corrections(methodology, sample_work["work"], tmp_path / "out", read_corrections(methodology, [path]))
    lines = str(exc.value).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"{path}:2: old value '{wrong}' of s_s_overall does not match '{a['s_s_overall']}'")
    assert lines[1] == f"{path}:3: form '24-99-999999' not found in source citizen"
    assert any(x.startswith(f"{path}:4: new value '7' breaks rule allowed_codes on s_s_overall") for x in lines)
    assert any(x.startswith(f"{path}:5: village '9999999' is not in the sampling frame") for x in lines)
    assert not (tmp_path / "out").exists()


def test_replace_batch_overlays_the_resent_file(tmp_path, methodology, sample_year):
    batch = sorted((sample_year / "citizen").glob("*"))[0]
    resent = tmp_path / "resent" / batch.name
    resent.parent.mkdir()
    resent.write_bytes(batch.read_bytes())
    path = write_corrections(tmp_path / "fix.csv", [
        {"action": "replace_batch", "source": "citizen", "field": f"citizen/{batch.name}",
         "new_value": f"resent/{batch.name}"}])
    fixes = read_corrections(methodology, [path])
    raw = overlay_raw(methodology, sample_year, fixes, tmp_path / "overlay")
    assert (raw / "citizen" / batch.name).resolve() == resent.resolve()
    assert len(list((raw / "citizen").iterdir())) == len(list((sample_year / "citizen").iterdir()))
    bad = write_corrections(tmp_path / "bad.csv", [
        {"action": "replace_batch", "source": "citizen", "field": "citizen/nope.csv", "new_value": "resent/x.csv",
         "old_value": "abc"}])
    with pytest.raises(CorrectionError, match=r"bad.csv:2: batch file citizen/nope.csv is not in"):
        overlay_raw(methodology, sample_year, read_corrections(methodology, [bad]), tmp_path / "o2")


def test_sample_correction_file_applies(tmp_path, methodology, sample_work):
    path = Path(__file__).resolve().parents[1] / "sample_data" / "corrections" / "2024_01_ha-noi.csv"
    out = apply_corrections(methodology, sample_work["work"], tmp_path / "out", read_corrections(methodology, [path]))
    assert [(a["action"], a["outcome"]) for a in out["applied"]] == [
        ("set", "valid"), ("set", "valid"), ("move", "valid"), ("withdraw", "withdrawn")]

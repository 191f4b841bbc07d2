"""Streaming (issue #19 item 6): a citizens' export read in many parts and validated in many batches gives the same
bronze, byte-identical silver and quarantine, and the same reports as the one-batch read; the checks across rows
(a key delivered twice, the copies far apart) still see the whole file."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline import validate as validate_module
from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.ingest import parts
from sipas_pipeline.stages import ingest, validate

SOURCES = ("citizen", "official", "appraisal")


def big_export(sample_year: Path, out: Path) -> Path:
    """A raw year whose citizens' folder holds one ~400 KB export (a sample batch's rows again and again, with fresh form ids)
    holding an exact copy and a conflicting copy of early rows near its end, a multi-line quoted cell, a ragged
    row and a blank line; the other sources as in the sample."""
    raw = out / "raw"
    shutil.copytree(sample_year, raw, ignore=shutil.ignore_patterns("truth"))
    citizen = raw / "citizen"
    table = list(csv.reader(io.StringIO((citizen / "sipas2024_01_ha-noi.csv").read_text(encoding="utf-8-sig"),
                                        newline="")))
    header, body = table[0], [r for r in table[1:] if len(r) == len(table[0])]
    for f in citizen.iterdir():
        f.unlink()
    rows = []
    for k in range(2000 // len(body)):
        for i, r in enumerate(body):
            r = list(r)
            r[0] = f"24-99-{k}{i:05d}"
            rows.append(r)
    rows[100][header.index("Họ và tên")] = "Nguyễn\nVăn A"  # a quoted cell over two lines (line 102)
    rows.insert(700, rows[700][:-3])  # a ragged row
    rows.append(list(rows[3]))  # an exact copy, ~1,800 rows after the first
    conflict = list(rows[10])
    conflict[header.index("S_P_ECO_CONTENT")] = "1" if conflict[header.index("S_P_ECO_CONTENT")] != "1" else "2"
    rows.append(conflict)  # the same form id, another answer
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows[:1500])
    buf.write("\r\n")  # a blank line: no row
    w.writerows(rows[1500:])
    (citizen / "sipas2024_99_all.csv").write_bytes(buf.getvalue().encode("utf-8-sig"))
    return raw


def run(m, raw: Path, work: Path) -> tuple[dict, dict]:
    got = ingest(m, raw, work), validate(m, work)
    return got[0].as_dict(), got[1].as_dict()


@pytest.fixture(scope="module")
def both(tmp_path_factory, methodology, sample_year):
    out = tmp_path_factory.mktemp("batches")
    raw = big_export(sample_year, out)
    whole = run(methodology, raw, out / "whole")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parts, "WHOLE_BYTES", 8192)
        mp.setattr(parts, "PART_BYTES", 8192)  # ~50 parts of the citizens' export
        mp.setattr(validate_module, "ONE_BATCH_ROWS", 250)
        mp.setattr(validate_module, "BATCH_ROWS", 250)  # ~8 batches of citizens, ~5 of officials
        batched = run(methodology, raw, out / "batched")
    return out, whole, batched


def test_many_parts_and_batches_give_the_same_files(both):
    out, whole, batched = both
    a, b = StageFolder(out / "whole"), StageFolder(out / "batched")
    for source in SOURCES:
        assert b.silver(source).read_bytes() == a.silver(source).read_bytes(), source
        assert b.quarantine(source).read_bytes() == a.quarantine(source).read_bytes(), source
        assert [p.name for p in b.bronze_files(source)] == [p.name for p in a.bronze_files(source)]
        for pa, pb in zip(a.bronze_files(source), b.bronze_files(source), strict=True):
            assert pl.read_parquet(pb).equals(pl.read_parquet(pa)), pb.name
    assert batched == whole  # ingest report (files, rows, hashes, line endings, notes) and validate accounting


def test_the_export_was_read_in_parts_and_checked_across_them(both):
    out, whole, _ = both
    ingested, checked = whole
    (export,) = ingested["files"]["citizen"]
    assert export["rows"] > 1800 and export["row_shape"] == 1 and export["line_endings"] == "mixed (CRLF 1981, LF 1)"
    assert Path(out / "raw" / export["file"]).stat().st_size > 50 * 8192
    acc = checked["sources"]["citizen"]
    assert acc["read"] == export["rows"] == acc["valid"] + acc["quarantined"]
    q = (pl.read_parquet(StageFolder(out / "batched").quarantine("citizen")).explode("reasons").unnest("reasons"))
    first = q.filter(pl.col("rule") == "duplicate_key")
    assert first.height == 1 and first["message"][0].startswith("exact copy of the row first at citizen/sipas2024_99_all")
    assert first["source_row"][0] > 1800
    conflict = q.filter(pl.col("rule") == "conflicting_duplicate")
    assert conflict.height == 2 and conflict["source_row"].min() < 20 < 1800 < conflict["source_row"].max()
    lines = pl.read_parquet(StageFolder(out / "batched").bronze_files("citizen")[0])["source_row"]
    assert {102, 104} <= set(lines) and 103 not in set(lines)  # the row with a two-line cell stays one row
    assert lines.is_sorted() and lines.n_unique() == lines.len() == export["rows"]


def test_validate_takes_the_bronze_ingest_kept_and_gives_the_same_files(tmp_path, methodology, sample_year):
    """In one process validate takes the bronze frames ingest kept (`parquet_rows.hold`) instead of reading the
    files back: the same silver and quarantine, byte for byte, as a validate that reads them (nothing kept)."""
    from sipas_pipeline import parquet_rows

    kept, read = StageFolder(tmp_path / "kept"), StageFolder(tmp_path / "read")
    ingest(methodology, sample_year, kept.root)
    files = kept.bronze_files("citizen")
    assert parquet_rows._taken(files, keep=True) is not None  # ingest kept every citizens' batch
    validate(methodology, kept.root)
    assert parquet_rows._taken(files, keep=True) is None  # taken once: let go
    ingest(methodology, sample_year, read.root)
    parquet_rows._held.clear()
    validate(methodology, read.root)
    for source in SOURCES:
        assert kept.silver(source).read_bytes() == read.silver(source).read_bytes(), source
        assert kept.quarantine(source).read_bytes() == read.quarantine(source).read_bytes(), source


def test_a_kept_frame_is_not_taken_once_its_file_changed(tmp_path):
    """`hold` keeps a frame while its file stays as written: a file written again (other rows) is read from disk."""
    from sipas_pipeline.parquet_rows import batches, hold, total_rows

    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    first, second = pl.DataFrame({"x": [1, 2]}), pl.DataFrame({"x": [3]})
    first.write_parquet(a)
    second.write_parquet(b)
    hold(a, pl.DataFrame({"x": [7, 8]}))  # not what the file holds: shows which was read
    hold(b, second)
    assert total_rows([a, b]) == 3
    (taken,), (again,) = batches([a, b], 10), batches([a, b], 10)
    assert taken["x"].to_list() == [7, 8, 3]  # both kept: taken, not read
    assert again["x"].to_list() == [1, 2, 3]  # taken once: read the second time
    hold(a, pl.DataFrame({"x": [7, 8]}))
    pl.DataFrame({"x": [5, 6, 9]}).write_parquet(a)  # written again after it was kept
    (read,) = batches([a], 10)
    assert read["x"].to_list() == [5, 6, 9]


def test_a_source_validated_in_batches_is_not_kept(tmp_path, methodology, sample_year, monkeypatch):
    """A source larger than one batch is validated from its files (memory bounded by the batch): ingest keeps none
    of its frames."""
    from sipas_pipeline import parquet_rows

    parquet_rows._held.clear()
    monkeypatch.setattr(validate_module, "ONE_BATCH_ROWS", 250)
    work = StageFolder(tmp_path / "work")
    ingest(methodology, sample_year, work.root)
    assert not parquet_rows._held  # the sample's citizens (and officials) are more than 250 rows
    monkeypatch.setattr(validate_module, "ONE_BATCH_ROWS", 64_000)
    ingest(methodology, sample_year, work.root)
    assert parquet_rows._taken(work.bronze_files("citizen"), keep=True) is not None

"""No personal data leaves the ingest step (issue #12): a real run on the sample year with rows whose
shape is wrong (a name shifted into a kept column, an extra field) leaves none of the exports' names,
phone or ID numbers in any output: Parquet, the DuckDB file, Prefect artifacts and logs, the log lines.
The same run records the files it did not read (`runs.ignored_files`)."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from pathlib import Path

import duckdb
import polars as pl
import polars.selectors as cs
import pytest

PLANTED = {"Hoàng Thị Rò Rỉ", "0912345678", "Vương Văn Tràn Ra", "0987000111", "079123456789"}


def _personal_data(raw: Path) -> set[str]:
    """Names, phone and ID numbers in the generator's UTF-8 citizen exports (every row)."""
    found: set[str] = set()
    for path in sorted((raw / "citizen").glob("*.csv")):
        try:
            rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
        except UnicodeDecodeError:
            continue
        header = rows[0]
        if "Họ và tên" not in header:
            continue
        cols = [header.index(h) for h in ("Họ và tên", "Số điện thoại", "Số CCCD")]
        found |= {r[i] for r in rows[1:] for i in cols if i < len(r) and len(r[i]) >= 6}
    return found


def _plant(raw: Path) -> None:
    """Row 4 of Hà Nội's batch loses its occupation (the name shifts left into a kept column); row 6 gets
    one field more; both carry planted names and numbers."""
    batch = raw / "citizen" / "sipas2024_01_ha-noi.csv"
    rows = list(csv.reader(io.StringIO(batch.read_bytes().decode("utf-8-sig"), newline="")))
    h = rows[0]
    name, phone, id_no, job = (h.index(c) for c in ("Họ và tên", "Số điện thoại", "Số CCCD", "Nghề nghiệp"))
    short = list(rows[3])
    short[name], short[phone], short[id_no] = "Hoàng Thị Rò Rỉ", "0912345678", "079123456789"
    rows[3] = short[:job] + short[job + 1:]
    long = list(rows[5])
    long[name], long[phone] = "Vương Văn Tràn Ra", "0987000111"
    rows[5] = [*long[:2], "Vương Văn Tràn Ra", *long[2:]]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    batch.write_bytes(buf.getvalue().encode("utf-8"))


@pytest.mark.integration
def test_no_personal_data_in_any_output(prefect_harness, sample_year, tmp_path):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    from sipas_pipeline.orchestration import annual_run

    raw = tmp_path / "raw"
    shutil.copytree(sample_year, raw)
    _plant(raw)
    (raw / "citizen" / "old").mkdir()
    shutil.copyfile(sample_year / "citizen" / "sipas2024_01_ha-noi.csv", raw / "citizen" / "old" / "sipas2024_01_ha-noi.csv")
    (raw / "citizen" / "ghi-chu.docx").write_bytes(b"notes")
    planted = (raw / "citizen" / "sipas2024_01_ha-noi.csv").read_text(encoding="utf-8")
    assert all(p in planted for p in PLANTED)
    secrets = _personal_data(raw) | PLANTED
    assert len(secrets) > 1500
    db, work = tmp_path / "sipas.duckdb", tmp_path / "work"
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(handler.format(record))  # every log line the run writes
    logging.getLogger("prefect").addHandler(handler)
    try:
        result = annual_run(year=2024, raw=str(raw), db=str(db), work=str(work))
    finally:
        logging.getLogger("prefect").removeHandler(handler)
    assert result["status"] == "published" and result["top_reasons"]["citizen"]["row_shape"] == 2
    assert any("validate:" in r for r in records)

    texts: dict[str, str] = {"log": "\n".join(records), "result": json.dumps(result.as_dict(), ensure_ascii=False)}
    manifests = sorted(work.rglob("*.json"))  # the stage manifests and the run record in the catalog
    assert {p.name for p in manifests} >= {"_manifest.json", f"{result.run_id}.json"}
    texts |= {str(p): p.read_text(encoding="utf-8") for p in manifests}
    parquet = sorted(work.rglob("*.parquet"))
    assert {p.parent.name for p in parquet} >= {"citizen", "silver", "quarantine", "results"}
    # text, nested and JSON columns (digits of floats could match a phone number by chance)
    for p in parquet:
        texts[str(p)] = str(pl.read_parquet(p).select(~cs.numeric() & ~cs.temporal() & ~cs.boolean()).rows())
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        assert {"quarantine", "runs", "indicator_values"} <= set(tables)
        for t in tables:
            cols = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = $1 AND "
                                              "(data_type LIKE '%VARCHAR%' OR data_type LIKE '%JSON%' OR "
                                              "data_type LIKE 'STRUCT%')", [t]).fetchall()]
            select = ", ".join(f'"{c}"' for c in cols)
            texts[f"duckdb:{t}"] = str(con.execute(f'SELECT {select} FROM "{t}"').fetchall()) if cols else ""
        ignored = con.execute("SELECT i.file, i.reason FROM (SELECT unnest(ignored_files) i FROM runs WHERE run_id = $1)",
                              [result["run_id"]]).fetchall()
        shape = con.execute("SELECT source_row, form_id, value, message FROM quarantine WHERE rule = 'row_shape' "
                            "ORDER BY source_row").fetchall()
    finally:
        con.close()
    # which file counts is explicit: the stale copy in a subfolder and the note are listed, not read
    assert [(f, r[:22]) for f, r in ignored] == [("citizen/ghi-chu.docx", "unsupported file type "),
                                                 ("citizen/old/sipas2024_01_ha-noi.csv", "in a subfolder: only f")]
    assert [i["file"] for i in result["ignored_files"]] == [f for f, _ in ignored]
    assert [(r[0], r[1], r[2]) for r in shape] == [(4, None, None), (6, None, None)]
    assert shape[0][3].startswith("line 4: 112 fields where the header (line 1) has 113")
    APILogWorker.drain_all(timeout=10)  # logs reach the API in batches: send what is queued first
    with get_client(sync_client=True) as client:
        run_filter = FlowRunFilter(id=FlowRunFilterId(any_=[result["flow_run_id"]]))
        artifacts = client.read_artifacts(flow_run_filter=run_filter)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[result["flow_run_id"]])))
    assert len(artifacts) == 4 and len(logs) > 3  # validation, two rankings, the release
    # the release (report, CSVs; the workbook's shared strings) carries no personal data either
    for path in map(Path, result["release"]["files"]):
        if path.suffix in (".html", ".csv"):
            texts[str(path)] = path.read_text(encoding="utf-8-sig")
        elif path.suffix == ".xlsx":
            import zipfile

            texts[str(path)] = zipfile.ZipFile(path).read("xl/sharedStrings.xml").decode("utf-8")
    texts |= {f"artifact:{a.key}": json.dumps(a.data, ensure_ascii=False) if not isinstance(a.data, str) else a.data
              for a in artifacts}
    texts["prefect logs"] = "\n".join(entry.message for entry in logs)
    forms = sorted(secrets | {json.dumps(s)[1:-1] for s in secrets})  # as written in JSON too
    # every text searched for every secret at once (Aho-Corasick), then the ones found named
    blobs = pl.Series("blob", list(texts.values()))
    leaking = blobs.str.contains_any(forms)
    leaks = {where: sorted(s for s in forms if s in blob)[:3]
             for (where, blob), hit in zip(texts.items(), leaking, strict=True) if hit}
    assert len(texts) > 20 and leaks == {}

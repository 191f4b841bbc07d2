"""The analyst release on the sample year: the HTML report opened in headless Chromium (DevTools protocol),
the workbook re-read against the database, formula injection, the CSVs, the `sipas report` command."""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from sipas_pipeline.publish import read_query as query

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def release(sample_db, tmp_path_factory):
    from sipas_pipeline.report import build

    return build(sample_db, 2024, tmp_path_factory.mktemp("release"))


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = json.loads(self.ws.recv(timeout=timeout))
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert CHROMIUM.is_file(), "make test installs Debian's chromium (apt-get install chromium)"
    port = free_port()
    proc = subprocess.Popen([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             f"--remote-debugging-port={port}", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
                             "--window-size=1100,1400", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [p for p in json.load(r) if p["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        yield tools
        tools.ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.integration
def test_report_opens_offline_in_chromium(release, browser, sample_db):
    """Screenshot not blank, no console error, no request but the file itself, every province in the main chart,
    a scorecard anchor opens."""
    from PIL import Image

    for domain in ("Page", "Network", "Runtime", "Log"):
        browser.call(f"{domain}.enable")
    url = release.html.as_uri()
    browser.call("Page.navigate", url=url)
    browser.wait_for("Page.loadEventFired")
    time.sleep(0.5)
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert [u for u in requests if not u.startswith("data:")] == [url]  # inline images (data:) are not requests
    errors = [e for e in browser.events if (e.get("method") == "Runtime.exceptionThrown") or
              (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error") or
              (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")]
    assert errors == []
    shot = browser.call("Page.captureScreenshot", format="png")
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("L")
    lo, hi = image.getextrema()
    assert hi - lo > 100 and sum(1 for c in image.histogram() if c) > 20  # text and charts drawn, not a blank page
    names = browser.call("Runtime.evaluate", returnByValue=True,
                         expression="[...document.querySelectorAll('#sipas-chart svg text')].map(t => t.textContent)")
    shown = set(names["result"]["value"])
    provinces = {n for (n,) in query(sample_db, "SELECT unit_name_vi FROM current_ranks WHERE measure = 'sipas'")}
    assert len(provinces) == 63 and provinces <= shown
    code = "01"
    browser.call("Page.navigate", url=f"{url}#p-{code}")
    time.sleep(0.5)
    card = browser.call("Runtime.evaluate", returnByValue=True, expression=(
        "(() => { const c = document.querySelector(':target'); const r = c.getBoundingClientRect();"
        " return [c.id, c.querySelector('h3').textContent, r.top, window.scrollY]; })()"))["result"]["value"]
    (name,), = query(sample_db, "SELECT name_vi FROM units WHERE unit_level = 'province' AND unit_code = '01'")
    assert card[0] == f"p-{code}" and card[1].startswith(name) and abs(card[2]) < 50 and card[3] > 1000


def test_workbook_matches_the_database(release, sample_db):
    """Rankings rounded as published with the unrounded value beside, indicators wide, the run record."""
    book = release.workbook
    ranks = pl.read_excel(book, sheet_name="Xếp hạng (Rankings)")
    db = {(m, c): (v, r) for m, c, v, r in query(sample_db, "SELECT measure, unit_code, value, rank_national FROM current_ranks")}
    assert ranks.height == len(db) == 4 * 63
    for row in ranks.iter_rows(named=True):
        value, rank = db[(row["Thước đo (measure)"], row["Mã (code)"])]
        assert row["Giá trị (value, unrounded)"] == pytest.approx(value, abs=1e-9)
        assert row["Giá trị công bố (value, rounded)"] == round(value, 2)
        assert row["Hạng (rank)"] == rank
    wide = pl.read_excel(book, sheet_name="Chỉ tiêu (Indicators)")
    (v,), = query(sample_db, "SELECT value FROM current_indicator_values WHERE unit_level = 'province' AND unit_code = '01'"
                             " AND indicator_id = (SELECT min(indicator_id) FROM indicators)")
    (first,), = query(sample_db, "SELECT min(indicator_id) FROM indicators")
    col = next(c for c in wide.columns if c.startswith(f"{first} — "))
    assert wide.filter(pl.col("Mã (code)") == "01")[col][0] == pytest.approx(v)
    run = pl.read_excel(book, sheet_name="Lần chạy (Run)")
    assert "2024-sample" in run["Nội dung (value)"].to_list()
    sheets = {"Xếp hạng (Rankings)", "Chỉ tiêu (Indicators)", "CCHC (PAR)", "Cách ly (Quarantine)", "Lần chạy (Run)"}
    import fastexcel

    assert set(fastexcel.read_excel(str(book)).sheet_names) == sheets


def test_formula_strings_are_written_as_text(sample_db, tmp_path):
    """A name that looks like a formula is written as text and reads back as the same text."""
    from sipas_pipeline.report.data import read
    from sipas_pipeline.report.excel import write_workbook

    data = read(sample_db, 2024)
    evil = ["=HYPERLINK(\"http://x\",\"click\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    ranks = data["ranks"]
    data.frames["ranks"] = ranks.with_columns(pl.Series("unit_name_vi", (evil * 100)[: ranks.height]))
    path = write_workbook(data, tmp_path / "evil.xlsx")
    back = pl.read_excel(path, sheet_name="Xếp hạng (Rankings)")["Tên (name)"].to_list()
    assert set(back) == set(evil)
    import zipfile

    sheet = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet  # no formula cell anywhere in the rankings sheet


def test_csvs_carry_a_bom_and_vietnamese(release):
    for path in release.csvs:
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), path
    text = release.csvs[0].read_text(encoding="utf-8-sig")
    assert "Hà Nội" in text and "Thừa Thiên Huế" in text


@pytest.mark.integration
def test_sipas_report_command(sample_db, tmp_path):
    from sipas_pipeline.cli import app

    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["report", "--year", "2024", "--db", str(sample_db), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    files = json.loads(r.stdout)
    assert Path(files["html"]).is_file() and Path(files["workbook"]).is_file() and len(files["pngs"]) == 2
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in files["pngs"])
    bad = CliRunner().invoke(app, ["report", "--year", "2019", "--db", str(sample_db), "--out", str(out), "--json"])
    assert bad.exit_code == 2 and json.loads(bad.stdout)["error"].endswith("no published run of 2019 (see `sipas runs list`)")
    again = CliRunner().invoke(app, ["report", "--year", "2024", "--db", str(sample_db), "--out", str(out)])
    assert again.exit_code == 0, again.output  # its own folder: made again
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("an analyst's file", encoding="utf-8")
    refused = CliRunner().invoke(app, ["report", "--year", "2024", "--db", str(sample_db), "--out", str(mine)])
    assert refused.exit_code == 2 and "not empty and not made by sipas" in refused.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    shutil.rmtree(out)


@pytest.mark.integration
def test_runs_list_fits_80_columns_and_json_keeps_vietnamese(sample_db, methodology, sample_work, tmp_path):
    """Two runs with real-length ids: the table fits 80 columns; --json output keeps Vietnamese unescaped;
    a --json failure is a JSON object; a long error is one line in a narrow terminal."""
    from datetime import UTC, datetime

    from sipas_pipeline.cli import app
    from sipas_pipeline.publish import publish
    from sipas_pipeline.stages import read_quarantine, read_results

    db = tmp_path / "sipas.duckdb"
    shutil.copyfile(sample_db, db)
    tables = read_results(sample_work["work"])
    hit = (pl.col("province_code") == "01") & (pl.col("measure") == "sipas")
    moved = tables | {"ranks": tables["ranks"].with_columns(pl.when(hit).then(pl.col("value") + 0.5)
                                                            .otherwise(pl.col("value")).alias("value"))}
    run_id = "2024-20261126T214055Z-a1b2c3"  # the format of orchestration.new_run_id
    publish(db, methodology, {"run_id": run_id, "started_at": datetime.now(UTC), "parameters": {}, "code_version": "t",
                              "timings": [], "accounting": [{"source": "citizen", "read": 36512, "valid": 36400,
                                                             "quarantined": 112}]}, moved, read_quarantine(sample_work["work"]))
    runner = CliRunner()
    table = runner.invoke(app, ["runs", "list", "--db", str(db)], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, table.stdout
    assert any(run_id in line and "current" in line and "36,512" in line for line in lines)
    assert any("2024-sample" in line and "published" in line for line in lines)
    diff = runner.invoke(app, ["runs", "diff", "2024-sample", run_id, "--db", str(db), "--json"])
    assert diff.exit_code == 0, diff.output
    assert '"unit_name_vi": "Hà Nội"' in diff.stdout and "\\u" not in diff.stdout
    assert {(d["kind"], d["unit_code"], d["item"]) for d in json.loads(diff.stdout)} == {("rank", "01", "sipas")}
    bad = runner.invoke(app, ["runs", "diff", "2024-sample", "no-such-run", "--db", str(db), "--json"])
    assert bad.exit_code == 2 and json.loads(bad.stdout) == {
        "error": "no run 'no-such-run' in the database (see `sipas runs list`)", "exit_code": 2}
    long_name = "thư_mục_rất_dài_" * 8
    narrow = runner.invoke(app, ["report", "--year", "2024", "--db", str(tmp_path / long_name / "x.duckdb"), "--out",
                                 str(tmp_path / "o")], env={"COLUMNS": "40"})
    assert narrow.exit_code == 2
    assert narrow.stderr.strip().count("\n") == 0 and narrow.stderr.startswith("error: ") and long_name in narrow.stderr


def test_incomplete_province_is_said_not_hidden(sample_db, tmp_path):
    """A province published without a figure (--allow-incomplete) is named with its reason, left out of the charts,
    and still has its scorecard."""
    from sipas_pipeline.report import charts
    from sipas_pipeline.report.data import read
    from sipas_pipeline.report.html import page

    data = read(sample_db, 2024)
    why = "no forms of citizens (không có phiếu người dân)"
    gone = pl.col("unit_code") == "01"
    data.frames["ranks"] = data["ranks"].with_columns(
        pl.when(gone).then(None).otherwise(pl.col(c)).alias(c) for c in ("value", "rank_national", "rank_low", "rank_high")
    ).with_columns(pl.when(gone).then(pl.lit(why)).otherwise(pl.col("incomplete_reason")).alias("incomplete_reason"))
    mine = (pl.col("unit_code") == "01") & (pl.col("unit_level") == "province")
    data.frames["sipas"] = data["sipas"].with_columns(
        pl.when(mine).then(None).otherwise(pl.col(c)).alias(c) for c in ("value", "ci_low", "ci_high"))
    provinces = data["sipas"].filter((pl.col("unit_level") == "province") & (pl.col("level") == "sipas"))
    svg = charts.sipas_ranking(provinces, 80.0)
    (name,), = query(sample_db, "SELECT name_vi FROM units WHERE unit_level = 'province' AND unit_code = '01'")
    assert f">{name}<" not in svg and svg.count("<text") > 62
    html = page(data, {k: "<svg></svg>" for k in ("sipas", "par", "regions", "heatmap", "ranks")})
    assert f"{name}: {why}" in html and "id='p-01'" in html

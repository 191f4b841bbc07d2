"""The analyst release. Built once for the module from the session's full-size year, published twice into a
real DuckDB file: a first run, then a re-run after appraisal corrections that move the group-A province
nearest the bound into group B. The re-run's release is opened in one headless Chromium (DevTools protocol)
and checked as a reader would see it (charts, tile map, scorecards, phone width, PDFs read back with
pdftotext); the workbook is read back against the database; the findings are computed from changed inputs."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import kept_data
import polars as pl
import pytest
from typer.testing import CliRunner

from sipas_pipeline.publish import read_query as query

RERUN_REASON = "Điểm thẩm định nhập sai (appraisal points keyed wrongly)"


def appraisal_corrections(work: Path, totals: pl.DataFrame, bound: float, path: Path) -> tuple[Path, str, int]:
    """Correction lines setting to 0 the largest appraised points of the group-A province nearest the bound,
    until its PAR INDEX falls below it by at least a point; returns the file, the province and the lines."""
    from sipas_pipeline.catalog import StageFolder
    from sipas_pipeline.corrections import COLUMNS

    target = totals.filter(pl.col("group") == "A").sort("par_index").row(0, named=True)
    need = target["par_index"] - bound + 1.0
    bronze = pl.concat([pl.read_parquet(p) for p in StageFolder(work).bronze_files("appraisal")])
    rows = (bronze.filter(pl.col("province_code") == target["province_code"])
            .with_columns(pl.col("appraised_points").cast(pl.Float64, strict=False).alias("p"))
            .filter(pl.col("p") > 0).sort("p", descending=True))
    lines, cut = [], 0.0
    for r in rows.iter_rows(named=True):
        if cut >= need:
            break
        lines.append({"action": "set", "source": "appraisal", "form_id": f"{r['province_code']}/{r['subcriterion_id']}",
                      "field": "appraised_points", "old_value": r["appraised_points"], "new_value": "0",
                      "reason": RERUN_REASON, "requested_by": "Sở Nội vụ", "requested_at": "2025-02-03"})
        cut += r["p"]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(lines)
    return path, target["province_code"], len(lines)


@pytest.fixture(scope="module")
def full_release(full_year_work, methodology, tmp_path_factory) -> dict:
    """The full-size year published (run A), re-run after corrections (run B, real corrections stage, compute
    and publish), and B's release built once, for all workers, kept for the next session while the code, the
    full-size year's work folder and this module are the same (kept_data; read it, never change it: `tmp` is a
    folder of the module's own to write in)."""
    from sipas_pipeline.corrections import apply_corrections, read_corrections
    from sipas_pipeline.publish import publish
    from sipas_pipeline.report import build
    from sipas_pipeline.report.build import ReportFiles
    from sipas_pipeline.stages import compute, read_quarantine, read_results

    report, _, work = full_year_work

    def make(folder: Path) -> None:
        folder.mkdir()
        db = folder / "sipas.duckdb"
        accounting = [{"source": s} | c for s, c in report["sources"].items()]
        first = read_results(work)
        publish(db, methodology, {"run_id": "2024-A", "started_at": datetime.now(UTC), "parameters": {},
                                  "code_version": "test", "timings": [], "accounting": accounting},
                first, read_quarantine(work))
        bound = dict(methodology.group_bounds)["A"]
        fix, province, lines = appraisal_corrections(work, first["par_totals"], bound, folder / "fix.csv")
        fixes = read_corrections(methodology, [fix])
        work_b = folder / "work_b"
        applied = apply_corrections(methodology, work, work_b, fixes, report["batches"])
        compute(methodology, work_b)
        publish(db, methodology, {"run_id": "2024-B", "started_at": datetime.now(UTC), "parameters": {},
                                  "code_version": "test", "timings": [], "accounting": accounting},
                read_results(work_b), read_quarantine(work_b), corrections=applied["applied"])
        files = build(db, 2024, folder / "release")
        made = {k: str(v.relative_to(folder)) if isinstance(v, Path) else [str(x.relative_to(folder)) for x in v]
                for k, v in vars(files).items()}
        (folder / "made.json").write_text(json.dumps({"files": made, "province": province, "lines": lines}),
                                          encoding="utf-8")

    module = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    folder = kept_data.kept("full_release", f"full_release of {work.parent.name}, test_report.py {module}", make)
    made = json.loads((folder / "made.json").read_text(encoding="utf-8"))
    files = ReportFiles(**{k: folder / v if isinstance(v, str) else [folder / x for x in v]
                           for k, v in made["files"].items()})
    return {"db": folder / "sipas.duckdb", "files": files, "province": made["province"], "lines": made["lines"],
            "tmp": tmp_path_factory.mktemp("full_release")}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from sipas_pipeline.report.chromium import Browser

    with Browser(tmp_path_factory.mktemp("chromium")) as b:
        yield b


def evaluate(browser, expression: str):
    return browser.page.evaluate(expression)


@pytest.fixture(scope="module")
def opened(full_release, browser):
    """The re-run's report open in the browser at desktop width."""
    page = browser.page
    for domain in ("Page", "Network", "Runtime", "Log"):
        page.call(f"{domain}.enable")
    url = full_release["files"].html.as_uri()
    page.call("Emulation.setDeviceMetricsOverride", width=1100, height=1400, deviceScaleFactor=1, mobile=False)
    page.call("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired")
    time.sleep(0.3)
    return url


pytestmark = pytest.mark.integration  # a real DuckDB file, the full-size year, a browser


def test_report_opens_offline_in_chromium(full_release, browser, opened):
    """Screenshot not blank, no console error, no request but the file itself, every province in the main chart,
    a scorecard anchor opens."""
    from PIL import Image

    events = browser.page.events
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert [u for u in requests if not u.startswith("data:")] == [opened]
    errors = [e for e in events if (e.get("method") == "Runtime.exceptionThrown") or
              (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error") or
              (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")]
    assert errors == []
    shot = browser.page.call("Page.captureScreenshot", format="png")
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("L")
    lo, hi = image.getextrema()
    assert hi - lo > 100 and sum(1 for c in image.histogram() if c) > 20  # text and charts drawn, not a blank page
    shown = set(evaluate(browser, "[...document.querySelectorAll('#sipas-chart svg text.name')].map(t => t.textContent)"))
    provinces = {n for (n,) in query(full_release["db"], "SELECT unit_name_vi FROM current_ranks WHERE measure = 'sipas'")}
    assert len(provinces) == 63 and provinces == shown
    browser.page.call("Page.navigate", url=f"{opened}#p-01")
    time.sleep(0.3)
    card = evaluate(browser, "(() => { const c = document.querySelector(':target'); const r = c.getBoundingClientRect();"
                             " return [c.id, c.querySelector('h3').textContent, r.top, window.scrollY]; })()")
    (name,), = query(full_release["db"], "SELECT name_vi FROM units WHERE unit_level = 'province' AND unit_code = '01'")
    assert card[0] == "p-01" and card[1].startswith(name) and abs(card[2]) < 50 and card[3] > 1000


def test_charts_do_not_mislead(full_release, browser, opened):
    """No bar axis starts above zero; the PAR chart draws the bounds of the groups in its range and its legend holds
    exactly the groups present; every label at least 11 px; wide intervals flagged."""
    bars = evaluate(browser, """[...document.querySelectorAll('svg')].filter(s => s.querySelector('rect.bar'))
        .map(s => [...s.querySelectorAll('line.axis')].map(a => parseFloat(a.dataset.min)))""")
    assert len(bars) >= 2 * 63 and all(mins and max(mins) <= 0 for mins in bars)  # elements and fields of every card
    par = evaluate(browser, """(() => { const s = document.querySelector('#par-chart svg');
        return {bounds: [...s.querySelectorAll('line.bound')].map(l => parseFloat(l.dataset.value)),
                legend: [...s.querySelectorAll('rect.legend-item')].map(r => r.dataset.group),
                dots: [...new Set([...s.querySelectorAll('circle.dot')].map(c => c.dataset.group))]}; })()""")
    groups = {g for (g,) in query(full_release["db"], "SELECT DISTINCT par_group FROM current_par_index WHERE unit_level = "
                                                      "'province' AND par_group IS NOT NULL")}
    assert groups == {"A", "B"} and set(par["legend"]) == groups == set(par["dots"]) and len(par["legend"]) == 2
    assert 90.0 in par["bounds"]  # the group A bound, inside the chart's range
    sizes = evaluate(browser, "[...document.querySelectorAll('svg text')].map(t => parseFloat(t.getAttribute('font-size')))")
    assert len(sizes) > 5000 and min(sizes) >= 11
    flagged = evaluate(browser, "document.querySelectorAll('#sipas-chart circle.flagged').length")
    wide = query(full_release["db"], "SELECT count(*) FROM current_sipas_indices WHERE unit_level = 'province' AND "
                                     "level = 'sipas' AND reliability = 'unreliable'")[0][0]
    assert flagged == wide and (flagged == 0 or evaluate(browser, "!!document.querySelector('#sipas-chart .legend-flag')"))


def test_tile_map_and_scorecards(full_release, browser, opened):
    """Each tile map holds every unit of the year once, in distinct places; each scorecard has its three charts,
    its region named and the lists titled for what they hold."""
    for fid in ("tile-sipas", "tile-par"):
        codes = evaluate(browser, f"[...document.querySelectorAll('#{fid} rect.tile')].map(r => r.dataset.code)")
        assert len(codes) == 63 and len(set(codes)) == 63
    legend = evaluate(browser, "[...document.querySelectorAll('#tile-par rect.legend-item')].map(r => r.dataset.group)")
    assert set(legend) == {"A", "B"}
    cards = evaluate(browser, """[...document.querySelectorAll('section.card')].map(c => [c.id,
        !!c.querySelector('svg.elements'), !!c.querySelector('svg.fields'), !!c.querySelector('svg.trend'),
        c.querySelector('h3').textContent])""")
    regions = dict(query(full_release["db"], "SELECT u.unit_code, r.name_vi FROM units u JOIN units r ON r.unit_level = "
                                             "'region' AND r.unit_code = u.region_code AND r.year = u.year "
                                             "WHERE u.unit_level = 'province' AND u.year = 2024"))
    assert len(cards) == 63 and all(e and f and t for _, e, f, t, _ in cards)
    assert all(regions[cid.removeprefix("p-")] in h3 for cid, *_, h3 in cards)
    son_la = evaluate(browser, "[...document.querySelectorAll('#p-14 svg.trend circle.trend-point')].map(c => c.dataset.year)")
    assert set(son_la) == {"2023", "2024"}  # the published 2023 figure beside 2024's own
    gaps = evaluate(browser, """[...document.querySelectorAll('#p-01 .list')].map(l => [l.querySelector('h4').textContent,
        [...l.querySelectorAll('li')].map(i => i.textContent)])""")
    above, below = gaps
    assert "above" in above[0] and "below" in below[0]
    assert all(x.endswith(("none)", "không có (none)")) or float(x.rsplit(": ", 1)[1]) > 0 for x in above[1])
    assert all(x.endswith("(none)") or float(x.rsplit(": ", 1)[1]) < 0 for x in below[1])


def test_phone_width_has_no_horizontal_scroll(full_release, browser):
    page = browser.page
    page.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
    try:
        page.call("Page.navigate", url=full_release["files"].html.as_uri())
        page.wait_for("Page.loadEventFired")
        time.sleep(0.3)
        width = evaluate(browser, "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1] <= 390
    finally:
        page.call("Emulation.setDeviceMetricsOverride", width=1100, height=1400, deviceScaleFactor=1, mobile=False)


def test_rerun_release_names_its_corrections_and_the_group_change(full_release, browser, opened):
    db, province = full_release["db"], full_release["province"]
    (name,), = query(db, f"SELECT name_vi FROM units WHERE unit_level = 'province' AND unit_code = '{province}'")
    group = query(db, "SELECT item, value_a, value_b FROM current_changes WHERE kind = 'group'")
    assert [(g[0]) for g in group] == ["par:A->B"] and group[0][1] >= 90 > group[0][2]
    assert query(db, "SELECT unit_code FROM run_diff('2024-A', '2024-B') WHERE kind = 'group'") == [(province,)]
    section = evaluate(browser, "document.querySelector('#changes').innerText")
    assert RERUN_REASON in section and f"{name} A → B" in section and "2024-A" in section
    assert str(full_release["lines"]) in section  # the number of correction lines applied
    moved = evaluate(browser, "[...document.querySelectorAll('#changes table.groups td')].map(t => t.textContent)")
    assert moved[:2] == [name, "A → B"]


def test_pdf_scorecards_one_page_each_with_the_name(full_release, browser):
    """Chromium's print to PDF, A4, one page per province, read back with pdftotext (three provinces: the longest
    name, one with a published earlier year, the capital)."""
    from sipas_pipeline.report.build import context
    from sipas_pipeline.report.data import read
    from sipas_pipeline.report.pdf import print_scorecards

    assert shutil.which("pdftotext"), "make test installs poppler-utils (pdftotext, pdfinfo)"
    ctx, tree = context(read(full_release["db"], 2024))
    codes = ["79", "14", "01"]
    pdfs = print_scorecards(ctx, tree, codes, full_release["tmp"] / "pdf", browser)
    names = dict(query(full_release["db"], "SELECT unit_code, name_vi FROM units WHERE unit_level = 'province'"))
    for code, pdf in zip(codes, pdfs, strict=True):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        assert re.search(r"^Pages:\s+1$", info, re.M), info
        assert re.search(r"^Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", info, re.M), info
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert names[code] in text and "SIPAS" in text


def test_press_pngs_are_wide_with_title_and_values(full_release):
    from PIL import Image

    pngs = full_release["files"].pngs
    assert len(pngs) == 2
    for png in pngs:
        with Image.open(png) as im:
            assert im.width >= 1600 and im.height > im.width  # 63 rows, readable
    from sipas_pipeline.report.build import context
    from sipas_pipeline.report.data import read
    from sipas_pipeline.report.figures import sipas_ranking

    ctx, _ = context(read(full_release["db"], 2024))
    texts = [a["s"] for kind, a in sipas_ranking(ctx).items if kind == "text"]
    assert texts[0].startswith("SIPAS 2024") and any(t.startswith("Nguồn / Source") for t in texts)
    (v,), = query(full_release["db"], "SELECT max(value) FROM current_ranks WHERE measure = 'sipas'")
    assert f"{v:.2f}" in texts or f"{v:.2f} †" in texts  # values printed beside the dots


def sheet_xml(book: Path) -> dict[str, str]:
    """Each sheet's XML by its name."""
    z = zipfile.ZipFile(book)
    workbook = z.read("xl/workbook.xml").decode()
    rels = z.read("xl/_rels/workbook.xml.rels").decode()
    targets = dict(re.findall(r'Id="(rId\d+)"[^>]*Target="([^"]+)"', rels)) | {
        k: v for v, k in re.findall(r'Target="([^"]+)"[^>]*Id="(rId\d+)"', rels)}
    found = re.findall(r'<sheet name="([^"]+)" sheetId="\d+" r:id="(rId\d+)"', workbook)
    return {name: z.read("xl/" + targets[rid]).decode() for name, rid in found}


def test_workbook_reads_back_equal_to_the_database_and_prints(full_release):
    import fastexcel

    book, db = full_release["files"].workbook, full_release["db"]
    names = fastexcel.read_excel(str(book)).sheet_names
    assert names[:4] == ["SIPAS", "SIPAS chính sách (policy)", "SIPAS dịch vụ (service)", "Chỉ số CCHC (PAR INDEX)"]
    assert {"Yếu tố (Elements)", "Chênh lệch (Contrasts)", "Thay đổi (Changes)", "Cách ly (Quarantine)",
            "Ghi chú (Notes)"} <= set(names)
    sipas = pl.read_excel(book, sheet_name="SIPAS")
    want = {c: (v, se, lo, hi, n) for c, v, se, lo, hi, n in query(db, (
        "SELECT unit_code, value, se, ci_low, ci_high, n FROM current_sipas_indices WHERE level = 'sipas'"))}
    assert sipas.height == len(want) == 63 + 6 + 1  # provinces, regions, the nation
    ranks = dict(query(db, "SELECT unit_code, rank_national FROM current_ranks WHERE measure = 'sipas'"))
    for r in sipas.iter_rows(named=True):
        v, se, lo, hi, n = want[r["Mã (code)"]]
        got = (r["Giá trị (value)"], r["Sai số chuẩn (se)"], r["KTC 95% dưới (95% CI low)"], r["KTC 95% trên (95% CI high)"])
        assert got == pytest.approx((v, se, lo, hi), abs=1e-12) and r["Số phiếu (n)"] == n
        assert r["Hạng (rank)"] == ranks.get(r["Mã (code)"])
    par = pl.read_excel(book, sheet_name="Chỉ số CCHC (PAR INDEX)")
    groups = dict(query(db, "SELECT unit_code, par_group FROM current_par_index WHERE unit_level = 'province'"))
    assert {r["Mã (code)"]: r["Nhóm (group)"] for r in par.iter_rows(named=True) if r["Mã (code)"] in groups} == groups
    el = pl.read_excel(book, sheet_name="Yếu tố (Elements)")
    el_db = {(c, n): v for c, n, v in query(db, "SELECT unit_code, node, value FROM current_sipas_indices WHERE level = "
                                                "'element'")}
    assert el.height == len(el_db) and all(r["Giá trị (value)"] == pytest.approx(el_db[(r["Mã (code)"], r["Mã mục (element "
                                                                                                          "or field)"])],
                                                                                 abs=1e-12) for r in el.iter_rows(named=True))
    gap = pl.read_excel(book, sheet_name="Chênh lệch (Contrasts)")
    assert gap.height == query(db, "SELECT count(*) FROM current_contrasts")[0][0]
    changes = pl.read_excel(book, sheet_name="Thay đổi (Changes)")
    assert RERUN_REASON in changes["Lý do (reason)"].to_list() and "B" in changes["Nhóm sau (group after)"].to_list()
    sheets = sheet_xml(book)
    assert set(sheets) == set(names)
    z = zipfile.ZipFile(book)
    titles = re.findall(r'<definedName name="_xlnm.Print_Titles" localSheetId="(\d+)">[^<]*\$1:\$1</definedName>',
                        z.read("xl/workbook.xml").decode())
    assert sorted(map(int, titles)) == list(range(len(names)))  # the header row repeated on every printed page
    for name, xml in sheets.items():
        assert 'orientation="landscape"' in xml and 'paperSize="9"' in xml, name
        assert '<pageSetUpPr fitToPage="1"/>' in xml and 'fitToHeight="0"' in xml, name
    styles = z.read("xl/styles.xml").decode()
    two = re.search(r'<numFmt numFmtId="(\d+)" formatCode="0\.00"/>', styles)
    assert two
    xfs = re.findall(r"<xf [^>]*>", styles.split("<cellXfs")[1].split("</cellXfs>")[0])
    two_styles = {str(i) for i, x in enumerate(xfs) if f'numFmtId="{two.group(1)}"' in x}
    value_cells = re.findall(r'<c r="F(?!1")\d+" s="(\d+)"', sheets["SIPAS"])  # column F below the header: the value
    assert len(value_cells) == 70 and set(value_cells) <= two_styles


def test_formula_strings_are_written_as_text(full_release, tmp_path):
    """A name that looks like a formula is written as text and reads back as the same text."""
    from sipas_pipeline.report.build import context
    from sipas_pipeline.report.data import read
    from sipas_pipeline.report.excel import write_workbook

    data = read(full_release["db"], 2024)
    evil = ["=HYPERLINK(\"http://x\",\"click\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    sipas = data["sipas"]
    data.frames["sipas"] = sipas.with_columns(pl.Series("unit_name_vi", (evil * 300)[: sipas.height]))
    ctx, tree = context(data)
    path = write_workbook(data, tmp_path / "evil.xlsx", ctx, tree)
    back = pl.read_excel(path, sheet_name="SIPAS")["Tên (name)"].to_list()
    assert set(back) == set(evil)
    assert "<f>" not in sheet_xml(path)["SIPAS"].split("<drawing")[0]  # no formula cell in the sheet


def test_csvs_carry_a_bom_and_vietnamese(full_release):
    for path in full_release["files"].csvs:
        assert path.read_bytes().startswith(b"\xef\xbb\xbf"), path
    text = full_release["files"].csvs[0].read_text(encoding="utf-8-sig")
    assert "Hà Nội" in text and "Thừa Thiên Huế" in text


def test_sipas_report_command(sample_db, tmp_path):
    from sipas_pipeline.cli import app

    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["report", "--year", "2024", "--db", str(sample_db), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    files = json.loads(r.stdout)
    assert Path(files["html"]).is_file() and Path(files["workbook"]).is_file() and len(files["pngs"]) == 2
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in files["pngs"]) and files["pdfs"] == []
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


def test_runs_list_fits_80_columns_and_json_keeps_vietnamese(sample_db, methodology, sample_work, tmp_path):
    """Two runs with real-length ids: the table fits 80 columns; --json output keeps Vietnamese unescaped;
    a --json failure is a JSON object; a long error is one line in a narrow terminal."""
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


def test_incomplete_province_is_said_not_hidden(sample_db):
    """A province published without a figure (--allow-incomplete) is named with its reason, left out of the charts,
    and still has its scorecard."""
    from sipas_pipeline.report import figures
    from sipas_pipeline.report.build import context
    from sipas_pipeline.report.data import read
    from sipas_pipeline.report.findings import compute_findings
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
    ctx, tree = context(data)
    svg = figures.sipas_ranking(ctx).svg()
    (name,), = query(sample_db, "SELECT name_vi FROM units WHERE unit_level = 'province' AND unit_code = '01'")
    assert f">{name}<" not in svg and svg.count("class='name'") == 62
    found = compute_findings(2024, data["sipas"], data["ranks"], data["par"], data["contrasts"], ctx.published, ctx.bounds)
    html = page(ctx, found, {k: "<svg></svg>" for k in ("sipas", "par", "heatmap")}, tree)
    assert f"{name}: {why}" in html and "id='p-01'" in html


def test_docs_release_sql_runs(full_release):
    """The query docs/release.md shows, on the release's database: the five largest gaps, each with its se."""
    from docs_pages import sql_statements

    (sql,) = sql_statements("release", "The contrasts (`contrasts`, `current_contrasts`)")
    rows = query(full_release["db"], sql)
    assert len(rows) == 5 and all(se > 0 and isinstance(sig, bool) for _, _, se, sig in rows)
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)

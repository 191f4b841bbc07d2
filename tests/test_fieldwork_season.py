"""A synthetic season replayed batch by batch through the real `fieldwork` deployment on the session's Prefect
server, beside the annual run of the same forms in the same DuckDB file."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline.publish import read_query as query

pytestmark = pytest.mark.integration  # a real Prefect server, flow runs, DuckDB and Parquet

CURRENT = ["current_runs", "current_indicator_values", "current_sipas_indices", "current_par_points", "current_par_index"]
GROUPS = 2  # flow runs of the deployment: the season's batches arrive in two waves


def snapshot(db: Path) -> dict[str, pl.DataFrame]:
    """Every annual current_* view, whole, in a fixed order."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return {v: con.sql(f"SELECT * FROM {v} ORDER BY ALL").pl() for v in CURRENT}
    finally:
        con.close()


async def replay_through_deployment(split: Path, inbox: Path, deployment: object) -> list[dict]:
    """Register the deployment `fieldwork` with a runner, then per wave: copy its batches into the inbox, ask the
    server for a run of the deployment and let the runner execute it (a real flow run in its own process)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.runner import Runner

    from sipas_pipeline.fieldwork.split import replay
    from sipas_pipeline.orchestration.fieldwork import DEPLOYMENT

    total = pl.read_csv(split / "schedule.csv").height
    cuts = [round(total * k / GROUPS) for k in range(GROUPS + 1)]
    runner = Runner(name="fieldwork-test", query_seconds=1)
    await runner.aadd_deployment(deployment)
    states = []
    async with get_client() as client:
        for a, b in itertools.pairwise(cuts):
            replay(split, inbox, upto=b, start=a)
            flow_run = await run_deployment(DEPLOYMENT, timeout=0)
            await runner.start(run_once=True)
            done = await client.read_flow_run(flow_run.id)
            states.append({"id": str(flow_run.id), "state": done.state.type.value, "batches": b - a})
    return states


def split_season(sample_year: Path) -> tuple[Path, dict, Path]:
    """The sample year split into the season's batches (split_raw: the annual raw folder of their last versions
    beside) and that annual folder's work folder as the real flow leaves it (annual_run, no release), made once for
    all workers and kept for the next session while the code and the inputs are the same (kept_data; read both,
    never change them): (the split folder, split_raw's summary, the work folder)."""
    import tempfile

    import kept_data

    from sipas_pipeline.fieldwork.split import split_raw
    from sipas_pipeline.methodology import load_methodology
    from sipas_pipeline.orchestration import annual_run
    from sipas_pipeline.stages import inputs_key

    m = load_methodology(2024)
    args = {"scale": 0.03, "mean_forms": 300, "team_size": 11}

    def make(folder: Path) -> None:
        folder.mkdir()
        info = split_raw(m, sample_year, folder / "split", **args)
        (folder / "split.json").write_text(json.dumps(info), encoding="utf-8")
        with tempfile.TemporaryDirectory() as scratch:
            made = annual_run(year=2024, raw=str(folder / "split" / "annual"), db=str(Path(scratch) / "made.duckdb"),
                              work=str(folder / "work"), report=False)
        assert made.status == "published" and made.cached == []

    recipe = f"split_raw({args}) of the sample year (inputs {inputs_key(m, sample_year)}), its annual run's work folder"
    folder = kept_data.kept("fieldwork_split", recipe, make)
    return folder / "split", json.loads((folder / "split.json").read_text(encoding="utf-8")), folder / "work"


@pytest.fixture(scope="module")
def season(prefect_harness, sample_year, tmp_path_factory) -> dict:
    from sipas_pipeline.orchestration import annual_run
    from sipas_pipeline.orchestration.fieldwork import fieldwork_deployment

    tmp = tmp_path_factory.mktemp("fieldwork")
    split, info, work = split_season(sample_year)
    db = tmp / "sipas.duckdb"
    shutil.copytree(work, tmp / "work")  # the annual run publishes the forms; its stages served from their manifests
    annual = annual_run(year=2024, raw=str(split / "annual"), db=str(db), work=str(tmp / "work"), report=False)
    before = snapshot(db)
    # the deployment `fieldwork` as served, without its interval schedule (the test asks for each run itself)
    deployment = fieldwork_deployment(2024, str(tmp / "inbox"), str(tmp / "season"), str(db), target_scale=0.03, interval=0)
    states = asyncio.run(replay_through_deployment(split, tmp / "inbox", deployment))
    return {"tmp": tmp, "split": split, "info": info, "db": db, "annual": annual, "before": before, "states": states}


def test_every_wave_ran_through_the_deployment(season):
    assert [s["state"] for s in season["states"]] == ["COMPLETED"] * GROUPS
    rows = query(season["db"], "SELECT count(*), count(*) FILTER (WHERE status = 'taken') FROM fieldwork_batches")
    assert rows == [(season["info"]["batches"], season["info"]["batches"] - 2)]  # one sent twice, one superseded


def test_provisional_after_the_last_batch_equals_the_annual_run(season):
    db = season["db"]
    ind = query(db, """SELECT count(*), max(abs(f.value - c.value)), max(abs(f.se - c.se)),
                              count(*) FILTER (WHERE (f.value IS NULL) <> (c.value IS NULL))
                       FROM fieldwork_indicators f
                       JOIN current_indicator_values c USING (year, unit_level, unit_code, indicator_id)""")
    assert ind[0][0] == query(db, "SELECT count(*) FROM current_indicator_values")[0][0] == (63 + 6 + 1) * 103
    assert ind[0][1] <= 1e-9 and ind[0][2] <= 1e-9 and ind[0][3] == 0
    sip = query(db, """SELECT count(*), max(abs(f.value - c.value)), max(abs(f.se - c.se)), max(abs(f.ci_low - c.ci_low))
                       FROM fieldwork_sipas f JOIN current_sipas_indices c USING (year, unit_level, unit_code, level, node)""")
    assert sip[0][0] == query(db, "SELECT count(*) FROM current_sipas_indices")[0][0]
    assert max(sip[0][1:]) <= 1e-9
    par = query(db, """SELECT count(*), max(abs(f.points - p.points)), max(abs(f.se - p.se)) FROM fieldwork_par_survey f
                       JOIN par_points p ON p.year = f.year AND p.province_code = f.province_code
                        AND p.level = 'subcriterion' AND p.node = f.subcriterion_id JOIN current_runs USING (run_id)""")
    assert par[0][0] == 63 * 20 and max(par[0][1:]) <= 1e-9  # 20 survey sub-criteria (officials' and citizens')
    tot = query(db, """SELECT count(*), max(abs(f.points - t.survey_points)), max(abs(f.se - t.se)), max(abs(f.df - t.df))
                       FROM fieldwork_par_survey f JOIN par_totals t ON t.year = f.year AND t.province_code = f.province_code
                       JOIN current_runs USING (run_id) WHERE f.subcriterion_id = '*'""")
    assert tot[0][0] == 63 and max(tot[0][1:]) <= 1e-9


def test_valid_forms_are_the_annual_runs(season):
    annual = {s: c["valid"] for s, c in season["annual"].sources.items()}
    status = query(season["db"], "SELECT forms_valid, forms_read, forms_quarantined FROM fieldwork_status")[0]
    assert status[0] == annual["citizen"] + annual["official"]
    assert status[1] == status[0] + status[2]


def test_a_batch_sent_twice_counts_once(season):
    db = season["db"]
    (dup,) = query(db, "SELECT file, same_as, valid, note FROM fieldwork_batches WHERE status = 'duplicate'")
    first = query(db, "SELECT file, status, valid FROM fieldwork_batches WHERE seq = ?", [dup[1]])[0]
    assert dup[0] == first[0] and dup[2] == 0 and "not counted again" in dup[3] and first[1] == "taken" and first[2] > 0


def test_the_wrong_province_code_batch_is_reported_with_its_reasons_and_replaced(season):
    db = season["db"]
    (old,) = query(db, "SELECT seq, batch_id, read, valid, quarantined, reasons, superseded_by FROM fieldwork_batches "
                       "WHERE status = 'superseded'")
    assert old[3] == 0 and old[4] == old[2] > 0  # every row quarantined
    assert json.loads(old[5])["province_known"] == json.loads(old[5])["geography"] == old[2]
    per_row = query(db, "SELECT source_row, list(rule ORDER BY rule), any_value(value) FILTER (WHERE rule = 'province_known') "
                        "FROM fieldwork_quarantine WHERE seq = ? GROUP BY ALL", [old[0]])
    assert len(per_row) == old[2] and all({"geography", "province_known"} <= set(r[1]) and r[2] == "99" for r in per_row)
    fixed = query(db, "SELECT batch_id, status, read, supersedes, valid FROM fieldwork_batches WHERE seq = ?", [old[6]])[0]
    assert fixed[:4] == (old[1], "taken", old[2], old[0]) and fixed[4] > 0.9 * old[2]


def test_the_annual_current_views_are_unchanged(season):
    after = snapshot(season["db"])
    for view, frame in season["before"].items():
        assert frame.height > 0 and frame.equals(after[view]), view


def test_progress_and_the_page(season):
    db = season["db"]
    prog = query(db, "SELECT source, count(*), sum(valid), sum(target) FROM fieldwork_progress WHERE level = 'province' "
                     "AND unit_code IN (SELECT province_code FROM fieldwork_units) GROUP BY ALL ORDER BY ALL")
    annual = season["annual"].sources
    assert prog == [("citizen", 63, annual["citizen"]["valid"], round(36525 * 0.03)),
                    ("official", 63, annual["official"]["valid"], round(49159 * 0.03))]
    page = season["tmp"] / "season" / "fieldwork.html"
    text = page.read_text(encoding="utf-8")
    assert "tạm tính" in text and "provisional" in text and "http" not in text.replace("http-equiv", "")


def test_status_command(season):
    from typer.testing import CliRunner

    from sipas_pipeline.cli import app

    tmp = season["tmp"]
    out = CliRunner().invoke(app, ["fieldwork", "status", "--year", "2024", "--season", str(tmp / "season"),
                                   "--inbox", str(tmp / "inbox"), "--json"])
    assert out.exit_code == 0, out.output
    state = json.loads(out.output)
    assert state["pending"] == 0 and state["status"]["batches_duplicate"] == 1 and state["status"]["batches_superseded"] == 1
    shutil.rmtree(tmp / "work", ignore_errors=True)


def test_the_queries_of_the_fieldwork_page_run(season):
    from docs_pages import sql_statements

    behind, teams, reasons = (query(season["db"], sql) for sql in sql_statements("fieldwork", "Queries"))
    assert len(behind) == 10 and all(r[2] <= r[3] for r in behind)  # valid forms against the target
    assert {r[0] for r in teams} == set(pl.read_csv(season["split"] / "schedule.csv")["team"])
    assert reasons and {r[3] for r in reasons} >= {"province_known", "geography"}


def test_the_page_opens_offline_in_chromium(season, tmp_path):
    """Not blank, no request but the file itself, every province in the progress chart."""
    import base64
    import io
    import time

    from PIL import Image

    from sipas_pipeline.report.chromium import Browser

    page = season["tmp"] / "season" / "fieldwork.html"
    with Browser(tmp_path / "chromium") as browser:
        tab = browser.page
        for domain in ("Page", "Network", "Runtime"):
            tab.call(f"{domain}.enable")
        tab.call("Page.navigate", url=page.as_uri())
        tab.wait_for("Page.loadEventFired")
        time.sleep(0.5)
        requests = [e["params"]["request"]["url"] for e in tab.events if e.get("method") == "Network.requestWillBeSent"]
        assert requests == [page.as_uri()]
        shot = tab.call("Page.captureScreenshot", format="png")
        lo, hi = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("L").getextrema()
        assert hi - lo > 100
        shown = tab.evaluate("[...document.querySelectorAll('#progress-citizen + svg text')].map(t => t.textContent)")
        circles = tab.evaluate("document.querySelectorAll('#sipas + svg circle').length")
    names = {n for (n,) in query(season["db"], "SELECT name_vi FROM fieldwork_units")}
    assert len(names) == 63 and names <= set(shown)
    assert circles == 63


def test_sample_fieldwork_command(tmp_path):
    from typer.testing import CliRunner

    from sipas_pipeline.cli import app

    out = CliRunner().invoke(app, ["sample", "--year", "2024", "--fieldwork", str(tmp_path / "season"), "--scale", "0.01",
                                   "--json"])
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    schedule = pl.read_csv(tmp_path / "season" / "schedule.csv")
    assert info["batches"] == schedule.height and schedule["arrives_at"].is_sorted()
    kinds = dict(schedule.group_by("kind").len().iter_rows())
    assert kinds["wrong_province_code"] == kinds["resent_fixed"] == kinds["sent_twice"] == 1 and kinds["late"] >= 3
    resent = schedule.filter(pl.col("kind").is_in(["wrong_province_code", "resent_fixed"]))
    assert resent["file"].map_elements(lambda f: Path(f).name, return_dtype=pl.Utf8).n_unique() == 1
    annual = list((tmp_path / "season" / "annual" / "citizen").iterdir())
    assert len(annual) == schedule.filter(pl.col("source") == "citizen")["file"].map_elements(
        lambda f: Path(f).name, return_dtype=pl.Utf8).n_unique()
    # the batches' rows are the year's rows, the re-sent and the twice-sent ones aside
    year_rows = json.loads((tmp_path / "season" / "year" / "truth" / "manifest.json").read_text())["rows"]
    once = schedule.filter(~pl.col("kind").is_in(["wrong_province_code", "sent_twice"]))
    assert dict(once.group_by("source").agg(pl.col("rows").sum()).iter_rows()) == {
        "citizen": year_rows["citizen"], "official": year_rows["official"]}


def test_submit_takes_a_batch_and_prints_every_reason(season, tmp_path):
    from typer.testing import CliRunner

    from sipas_pipeline.cli import app

    schedule = pl.read_csv(season["split"] / "schedule.csv")
    wrong = season["split"] / schedule.filter(pl.col("kind") == "wrong_province_code")["file"][0]
    args = ["fieldwork", "submit", str(wrong), "--source", "citizen", "--year", "2024", "--season", str(tmp_path / "s"),
            "--inbox", str(tmp_path / "inbox"), "--db", str(tmp_path / "f.duckdb")]
    out = CliRunner().invoke(app, args, terminal_width=200)
    assert out.exit_code == 0, out.output
    rows = pl.read_csv(wrong).height
    assert f"read {rows}, valid 0, quarantined {rows}" in out.output and "province_known" in out.output
    assert out.output.count("not a province code, name or known alias") == rows  # every row's reason, printed
    again = CliRunner().invoke(app, [*args, "--json"])
    entry = json.loads(again.output)["entries"][0]
    assert entry["status"] == "duplicate" and entry["same_as"] == 1  # the same bytes again: counted once
    assert query(tmp_path / "f.duckdb", "SELECT count(*), sum(valid) FROM fieldwork_batches") == [(2, 0)]


def test_submit_queue_asks_the_deployment_for_a_run(season, tmp_path, prefect_harness):
    from prefect import get_client
    from typer.testing import CliRunner

    from sipas_pipeline.cli import app

    batch = next((season["split"] / "batches" / "official").rglob("*.csv"))
    out = CliRunner().invoke(app, ["fieldwork", "submit", str(batch), "--source", "official", "--year", "2024",
                                   "--inbox", str(tmp_path / "inbox"), "--queue", "--json"])
    assert out.exit_code == 0, out.output
    asked = json.loads(out.output)
    assert Path(asked["inbox"]).read_bytes() == batch.read_bytes()
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(asked["flow_run"])
        deployment = client.read_deployment(run.deployment_id)
    assert deployment.name == "fieldwork" and run.state.type.value == "SCHEDULED"


def test_the_page_follows_every_batch_and_its_provinces_are_the_full_computation(season, tmp_path):
    """Batch by batch (in this process, the flow's own `take_batch`): the page is rewritten after each one, with its
    count of batches; the provinces' SIPAS on it, recomputed only for the provinces a batch touched, equals the full
    computation from the season's cells after every batch (re-sent batch and retractions included), bit for bit."""
    from sipas_pipeline.fieldwork.inbox import pending
    from sipas_pipeline.fieldwork.live import take_batch
    from sipas_pipeline.fieldwork.season import Season
    from sipas_pipeline.fieldwork.split import replay
    from sipas_pipeline.fieldwork.sufficient import province_sipas
    from sipas_pipeline.methodology import load_methodology

    m = load_methodology(2024)
    s = Season.open(tmp_path / "season", target_scale=0.03)
    replay(season["split"], tmp_path / "inbox")
    for k, (source, path) in enumerate(pending(m, s, tmp_path / "inbox"), 1):
        entry = take_batch(m, s, source, path, s.page_path)
        taken = sum(1 for e in s.ledger() if e["status"] == "taken")
        assert f"<span class='en'>(batches taken)</span> {taken}," in s.page_path.read_text(encoding="utf-8")
        full = province_sipas(m, s.cells(m)).sort("unit_code", "level", "node")
        assert s.province_sipas().sort("unit_code", "level", "node").equals(full), f"after batch {k} ({entry['file']})"
    assert k == season["info"]["batches"] and {"taken", "duplicate", "superseded"} <= {e["status"] for e in s.ledger()}

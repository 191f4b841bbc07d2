"""Shared fixtures: the methodology, a full-size synthetic year made once per session."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import kept_data
import pytest
import session_shared

from sipas_pipeline.config import prefect_defaults

ROOT = Path(__file__).resolve().parents[1]
prefect_defaults(ROOT / ".prefect")  # before any test imports Prefect


def pytest_configure(config: pytest.Config) -> None:
    """The controller (not an xdist worker) opens the session's shared folder and Prefect address before the
    workers start, so that they inherit both (see session_shared). For the whole suite (no paths given, the
    integration tier included) it starts the Prefect server at once, so that it is up by the time the first
    flow needs it."""
    if not hasattr(config, "workerinput"):
        session_shared.open_session()
        whole = config.args_source == pytest.Config.ArgsSource.TESTPATHS
        if whole and "not integration" not in " ".join((config.getoption("markexpr") or "").split()):
            session_shared.spawn_prefect_server()


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        session_shared.close_session()


# a real Prefect server, the full-size year, the installed wheel, the sample year run through the stages
INTEGRATION_FIXTURES = {"prefect_harness", "full_year", "full_year_work", "wheel_venv", "sample_work", "sample_db",
                        "sample_flow_work"}
# What a test needs beyond Python, said by marker (registered in pyproject; docs/tests.md): a fixture that brings it
# marks every test using it, directly or through another fixture; a marker of these puts the test in integration.
NEEDS = {"prefect_harness": "server", "browser": "browser"}
NEED_MARKERS = ("server", "browser", "r")
# The longest files (20-70 s each on this machine, see benchmarks/RESULTS.md "Test suite"), handed to the
# workers first so that no long file starts while the others have nothing left to do.
LONGEST_FIRST = ("test_benchmarks", "test_fieldwork_season", "test_operating", "test_bad_runs", "test_synth",
                 "test_bad_trust_runs", "test_bad_trust", "test_reruns", "test_year2025", "test_flow",
                 "test_database_safety", "test_killed_runs")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers: `-m "not integration"` is the fast tier (pure functions, golden fixtures, small frames). A test
    is in the integration tier when marked so (real flows, DuckDB files, subprocesses), by itself or its
    module's `pytestmark`, or when it uses a real Prefect server or the full-size year. Then the longest
    files first (order within a file kept)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, marker in NEEDS.items():
            if fixture in fixtures:
                item.add_marker(marker)
        if INTEGRATION_FIXTURES & fixtures or any(item.get_closest_marker(m) for m in NEED_MARKERS):
            item.add_marker(pytest.mark.integration)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def methodology():
    from sipas_pipeline.methodology import load_methodology

    return load_methodology(2024)


@pytest.fixture(scope="session")
def full_year() -> Path:
    """A full-size synthetic 2024 year (seed 7), made once for all workers and kept for the next session while the
    code is the same (kept_data; read it, never change it)."""
    return kept_data.synthetic_year(2024, 1.0)


@pytest.fixture(scope="session")
def full_year_work(full_year, methodology) -> tuple[dict, dict, Path]:
    """The full-size year through ingest, validate and compute (no Prefect), once for all workers: the
    validation report and the compute summary (as their dicts) and the work folder, kept for the next session
    while the code is the same (kept_data). Read it, never change it."""
    from sipas_pipeline.stages import compute, ingest_and_validate

    def make(folder: Path) -> None:
        report = ingest_and_validate(methodology, full_year, folder / "work")
        summary = compute(methodology, folder / "work")
        reports = {"validation": report.as_dict(), "compute": summary.as_dict()}
        (folder / "reports.json").write_text(json.dumps(reports, ensure_ascii=False), encoding="utf-8")

    folder = kept_data.kept("full_year_work", f"ingest_and_validate + compute of {full_year.name}", make)
    reports = json.loads((folder / "reports.json").read_text(encoding="utf-8"))
    return reports["validation"], reports["compute"], folder / "work"


@pytest.fixture(scope="session")
def sample_year() -> Path:
    """The small committed year under sample_data/."""
    return ROOT / "sample_data" / "2024"


@pytest.fixture(scope="session")
def wheel_venv() -> Path:
    """The wheel built and installed in a fresh virtual environment outside the checkout (see wheel_env), once for
    all workers and kept for the next session while the code is the same (kept_data): the folder holding dist/
    and venv/."""
    import wheel_env

    return kept_data.kept("wheel_venv", f"wheel_env.build with {sys.executable}", wheel_env.build)


@pytest.fixture(scope="session")
def prefect_harness() -> str:
    """The session's Prefect server and temporary database (the flow's real engine), shared by every worker and
    every `sipas` subprocess through PREFECT_API_URL; its URL."""
    return session_shared.start_prefect_server()


@pytest.fixture(scope="session")
def sample_work(methodology, sample_year) -> dict:
    """The committed sample year through ingest, validate and compute (no Prefect): work folder + reports (as the
    stages return them), made once for all workers and kept for the next session while the code and the inputs are
    the same (kept_data; read the work folder, never change it)."""
    from sipas_pipeline.stages import Computed, Ingested, Validated, compute, ingest, inputs_key, validate

    def make(folder: Path) -> None:
        work = folder / "work"
        reports = {"ingested": ingest(methodology, sample_year, work), "checked": validate(methodology, work),
                   "summary": compute(methodology, work)}
        (folder / "reports.json").write_text(json.dumps({k: r.as_dict() for k, r in reports.items()}, ensure_ascii=False),
                                             encoding="utf-8")

    recipe = f"ingest + validate + compute of the sample year, inputs {inputs_key(methodology, sample_year)}"
    folder = kept_data.kept("sample_work", recipe, make)
    reports = json.loads((folder / "reports.json").read_text(encoding="utf-8"))
    return {"work": folder / "work", "ingested": Ingested.from_dict(reports["ingested"]),
            "checked": Validated.from_dict(reports["checked"]), "summary": Computed.from_dict(reports["summary"])}


@pytest.fixture(scope="session")
def sample_flow_work(prefect_harness, methodology, sample_year) -> Path:
    """The committed sample year's work folder as the real flow leaves it (`annual_run`, no release), made once for
    all workers and kept for the next session while the code and the inputs are the same (kept_data; read it,
    never change it). A test whose point is not the stages copies it as its run's work folder: a run of the sample
    year on the copy serves ingest, validate and compute from their manifests (~0.6 s of CPU, not ~2.7 s)."""
    import tempfile

    from sipas_pipeline.orchestration import annual_run
    from sipas_pipeline.stages import inputs_key

    def make(folder: Path) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            result = annual_run(year=2024, raw=str(sample_year), db=str(Path(scratch) / "made.duckdb"),
                                work=str(folder / "work"), report=False)
        assert result.status == "published" and result.cached == []

    recipe = f"annual_run(report=False) of the sample year, inputs {inputs_key(methodology, sample_year)}"
    return kept_data.kept("sample_flow_work", recipe, make) / "work"


@pytest.fixture(scope="session")
def sample_db(methodology, sample_work) -> Path:
    """The committed sample year published (publish called directly, no Prefect) into a real DuckDB file, made once
    for all workers and kept for the next session with the kept sample_work it publishes (kept_data; read it, never
    change it: copy it to write)."""
    from datetime import UTC, datetime

    from sipas_pipeline.publish import publish
    from sipas_pipeline.stages import read_quarantine, read_results, run_inputs

    def make(folder: Path) -> None:
        folder.mkdir()
        run = {"run_id": "2024-sample", "started_at": datetime.now(UTC), "parameters": {"year": 2024},
               "code_version": "test", "timings": [], "inputs": run_inputs(sample_work["ingested"], sample_work["checked"]),
               "accounting": [{"source": s} | c for s, c in sample_work["checked"]["sources"].items()]}
        publish(folder / "sipas.duckdb", methodology, run, read_results(sample_work["work"]),
                read_quarantine(sample_work["work"]))

    return kept_data.kept("sample_db", f"publish of {sample_work['work'].parent.name}", make) / "sipas.duckdb"

"""Shared fixtures: the methodology, a full-size synthetic year made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipas_pipeline.config import prefect_defaults

ROOT = Path(__file__).resolve().parents[1]
prefect_defaults(ROOT / ".prefect")  # before any test imports Prefect


INTEGRATION_FIXTURES = {"prefect_harness", "full_year"}  # a real Prefect server, the full-size year


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers: `-m "not integration"` is the fast tier (pure functions, golden fixtures, small frames). A test
    is in the integration tier when marked so (real flows, DuckDB files, subprocesses), by itself or its
    module's `pytestmark`, or when it uses a real Prefect server or the full-size year."""
    for item in items:
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def methodology():
    from sipas_pipeline.methodology import load_methodology

    return load_methodology(2024)


@pytest.fixture(scope="session")
def full_year(tmp_path_factory) -> Path:
    """A full-size synthetic 2024 year (seed 7)."""
    from sipas_pipeline.synth import generate_year

    out = tmp_path_factory.mktemp("year") / "raw"
    generate_year(2024, out, seed=7, scale=1.0)
    return out


@pytest.fixture(scope="session")
def sample_year() -> Path:
    """The small committed year under sample_data/."""
    return ROOT / "sample_data" / "2024"


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server and database for the whole session (the flow's real engine)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def sample_work(tmp_path_factory, methodology, sample_year) -> dict:
    """The committed sample year through ingest, validate and compute (no Prefect): work folder + reports."""
    from sipas_pipeline.stages import compute, ingest, validate

    work = tmp_path_factory.mktemp("sample_work")
    ingested = ingest(methodology, sample_year, work)
    checked = validate(methodology, work)
    summary = compute(methodology, work)
    return {"work": work, "ingested": ingested, "checked": checked, "summary": summary}

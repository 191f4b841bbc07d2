"""The data root (SIPAS_DATA): every relative path a run is given resolves against it, never the current
directory; correction files named without a folder live in <root>/corrections; `corrections` is one name or a list."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipas_pipeline.paths import correction_names, correction_path, corrections_dir, data_root, default_db, under_root, year_dir


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the serving process's directory: must play no part
    monkeypatch.setenv("SIPAS_DATA", str(tmp_path / "root"))
    return tmp_path / "root"


def test_relative_paths_resolve_against_the_root_not_the_cwd(root):
    assert data_root() == root
    assert under_root("2024/raw") == root / "2024" / "raw"
    assert under_root("/srv/other/raw") == Path("/srv/other/raw")
    assert under_root(None, year_dir(2024, "raw")) == root / "2024" / "raw"
    assert default_db() == root / "sipas.duckdb"
    assert year_dir(2025, "work") == root / "2025" / "work"


def test_a_relative_root_is_made_absolute_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIPAS_DATA", "data-root")
    assert data_root() == tmp_path / "data-root" and data_root().is_absolute()


def test_without_the_setting_the_root_is_data_of_the_command_line(tmp_path, monkeypatch):
    monkeypatch.delenv("SIPAS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_root() == tmp_path / "data"


def test_corrections_one_name_or_a_list():
    assert correction_names(None) == []
    assert correction_names("fix.csv") == ["fix.csv"]
    assert correction_names(["a.csv", "b.xlsx"]) == ["a.csv", "b.xlsx"]
    assert correction_names([]) == []


def test_correction_files_live_in_the_corrections_folder(root):
    assert corrections_dir() == root / "corrections"
    assert correction_path("fix.csv") == root / "corrections" / "fix.csv"  # missing: named where it is expected
    (root / "corrections").mkdir(parents=True)
    (root / "corrections" / "fix.csv").write_text("x")
    assert correction_path("fix.csv") == root / "corrections" / "fix.csv"
    # a path relative to the root itself names the same file (not corrections/corrections/fix.csv)
    assert correction_path("corrections/fix.csv") == root / "corrections" / "fix.csv"
    (root / "2024").mkdir()
    (root / "2024" / "extra.csv").write_text("x")
    assert correction_path("2024/extra.csv") == root / "2024" / "extra.csv"
    assert correction_path("/abs/fix.csv") == Path("/abs/fix.csv")

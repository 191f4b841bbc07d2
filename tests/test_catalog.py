"""The work folder's catalog: paths, the stage manifests (the one cache), typed reports; and the evidence that
no other module spells a path of the work folder."""

from __future__ import annotations

import re
from pathlib import Path

from sipas_pipeline.catalog import MANIFEST, Catalog, StageFolder
from sipas_pipeline.stages import Computed, Validated

ROOT = Path(__file__).resolve().parents[1]


def test_stage_folder_paths(tmp_path):
    f = StageFolder(tmp_path)
    assert f.silver("citizen") == tmp_path / "silver" / "citizen.parquet"
    assert f.quarantine("official") == tmp_path / "quarantine" / "official.parquet"
    assert f.bronze("appraisal") == tmp_path / "bronze" / "appraisal"
    assert f.result("ranks") == tmp_path / "results" / "ranks.parquet"
    assert f.corrected("ab" * 32).root == tmp_path / f"corrected-{'ab' * 8}"
    (tmp_path / "bronze" / "citizen").mkdir(parents=True)
    for name in ("b.parquet", "a.parquet", "notes.txt"):
        (tmp_path / "bronze" / "citizen" / name).write_bytes(b"")
    assert [p.name for p in f.bronze_files("citizen")] == ["a.parquet", "b.parquet"]


def test_catalog_folders_are_named_by_content(tmp_path):
    c = Catalog(tmp_path)
    assert c.inputs("0123456789abcdef" + "f" * 48).root == tmp_path / "inputs-0123456789abcdef"
    assert c.overlay("fedcba9876543210" + "0" * 48) == tmp_path / "raw-fedcba9876543210"
    assert c.run_record("2024-x") == tmp_path / "runs" / "2024-x.json"
    c.inputs("b" * 64).root.mkdir()
    c.inputs("a" * 64).root.mkdir()
    (tmp_path / "inputs-stray.txt").write_text("")
    assert [f.root.name for f in c.input_folders()] == ["inputs-aaaaaaaaaaaaaaaa", "inputs-bbbbbbbbbbbbbbbb"]


def test_manifest_is_the_only_proof_of_a_complete_stage(tmp_path):
    f = StageFolder(tmp_path)
    assert f.cached("validate", "k1") is None  # nothing there
    f.silver_dir.mkdir()
    f.write_manifest("validate", "k1", {"sources": {"citizen": {"read": 3}}})
    assert f.manifest("validate") == tmp_path / "silver" / MANIFEST
    assert f.cached("validate", "k1") == {"sources": {"citizen": {"read": 3}}}
    assert f.cached("validate", "k2") is None  # another key: run again
    assert f.cached("correct", "k1") is None  # same file, another stage's
    f.forget("validate")
    assert f.cached("validate", "k1") is None
    f.manifest("validate").write_text("{half a fi")  # a torn write is no proof
    assert f.cached("validate", "k1") is None


def test_cached_stage_runs_once_per_key(tmp_path):
    from sipas_pipeline.orchestration import cached_stage

    calls = []

    class Stage:
        name = "validate"

        def __call__(self, value):
            calls.append(value)
            return Validated(sources={"citizen": {"read": value}}, batches=[], top_reasons={}), 1.5

    f = StageFolder(tmp_path)
    f.silver_dir.mkdir()
    first = cached_stage(f, "validate", "k", Validated, Stage(), 1)
    again = cached_stage(f, "validate", "k", Validated, Stage(), 2)
    other = cached_stage(f, "validate", "k2", Validated, Stage(), 3)
    assert calls == [1, 3]
    assert isinstance(again[0], Validated)  # the manifest read back as the stage's typed report
    assert first[0].sources == again[0].sources == {"citizen": {"read": 1}} and other[0].sources == {"citizen": {"read": 3}}
    assert (first[1].seconds, first[1].cached) == (1.5, False) and (again[1].seconds, again[1].cached) == (0.0, True)


def test_reports_round_trip_through_their_json_form():
    v = Validated(sources={"citizen": {"read": 2, "valid": 1, "quarantined": 1}}, batches=[{"source_file": "a"}],
                  top_reasons={"citizen": {"range": 1}})
    assert Validated.from_dict(v.as_dict() | {"seconds": 3.0}) == v
    assert v["sources"] is v.sources
    c = Computed(national={"sipas": 80.0}, groups={"A": 1}, incomplete={}, sipas={}, par={}, results_hash="h")
    assert Computed.from_dict(c.as_dict()).results_hash == "h"


def test_run_result_json_leaves_out_reasons_and_artifacts():
    from sipas_pipeline.orchestration import RunResult

    names = [f for f in RunResult.__dataclass_fields__]
    r = RunResult(**{n: n for n in names})
    assert set(r.public()) == set(names) - {"top_reasons", "artifacts"}


# a work-folder path spelled out: a folder joined onto a path, a content-named folder, a marker or manifest file
WORK_LITERAL = re.compile(r"""/\s*f?["'](bronze|silver|quarantine|results|runs)["'/]|["'](inputs|corrected|raw)-|"""
                          r"""(_manifest|validated|summary)\.json""")


def test_no_module_but_the_catalog_spells_a_work_folder_path():
    found = []
    for path in sorted((ROOT / "src" / "sipas_pipeline").rglob("*.py")):
        if path.name == "catalog.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if WORK_LITERAL.search(line.split("#")[0]):
                found.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert found == []
    assert WORK_LITERAL.search('work_dir / "silver" / f"{s}.parquet"') and WORK_LITERAL.search('root / f"inputs-{key}"')

"""Progress of long work: plain lines in a log (one per tenth, never more), a Rich bar on a terminal, nothing
when no command shows it."""

from __future__ import annotations

import io

import pytest

from sipas_pipeline.progress import shown, track


def test_nothing_is_shown_unless_a_command_asks():
    assert list(track(range(5), 5, "x")) == [0, 1, 2, 3, 4]


def test_plain_lines_in_a_log_one_per_tenth():
    log = io.StringIO()
    with shown(log, terminal=False, quiet=0):
        assert sum(track(range(63), 63, "sample 2024: provinces")) == sum(range(63))
    lines = log.getvalue().splitlines()
    assert len(lines) == 10  # 10 %, 20 %, ..., 100 %: 63 items, ten lines
    assert lines[0].startswith("sample 2024: provinces: 7/63 (11%), ") and lines[-1].startswith(
        "sample 2024: provinces: 63/63 (100%), ")
    assert all(line.endswith(" s") for line in lines)


def test_a_short_list_gets_a_line_per_item():
    log = io.StringIO()
    with shown(log, terminal=False, quiet=0):
        list(track(["a", "b", "c"], 3, "ingest citizen files"))
    assert [x.split(",")[0] for x in log.getvalue().splitlines()] == [
        "ingest citizen files: 1/3 (33%)", "ingest citizen files: 2/3 (66%)", "ingest citizen files: 3/3 (100%)"]


def test_a_terminal_gets_a_bar_that_goes_when_done():
    out = io.StringIO()
    with shown(out, terminal=True):
        list(track(range(4), 4, "ingest official files"))
    drawn = out.getvalue()
    assert "ingest official files" in drawn and "━" in drawn and "/4" in drawn  # a bar with its count
    assert drawn.rstrip("\r").endswith("\x1b[2K\x1b[?25h")  # then erased (transient): the command's output follows
    assert "(100%)" not in drawn  # not the plain lines


def test_quick_work_prints_nothing_in_a_log():
    log = io.StringIO()
    with shown(log, terminal=False):  # the default: lines only once the work has taken 5 s
        list(track(range(63), 63, "ingest citizen files"))
    assert log.getvalue() == ""


@pytest.mark.integration
def test_ingest_reports_its_files(tmp_path, methodology, sample_year):
    """Ingest's loop over an export's files is what `sipas validate` shows (here in a log, without the quiet start;
    the generator's loop over provinces, what `sipas sample` shows, reports the same way)."""
    from sipas_pipeline.ingest.bronze import ingest_source

    log = io.StringIO()
    with shown(log, terminal=False, quiet=0):
        report = ingest_source(methodology, "citizen", sample_year, tmp_path / "bronze")
    lines = log.getvalue().splitlines()
    assert len(report.files) == 63 and len(lines) == 10
    assert lines[-1].startswith("ingest citizen files: 63/63 (100%), ")


def task_record(name: str, message: str) -> None:
    """A log record of a task run, as Prefect's task-run logger emits it (the task's name in `task_name`), handed to
    the stages' handler on that logger (not to Prefect's own handlers: there is no flow run here)."""
    import logging

    from sipas_pipeline.progress import TASK_RUNS, StageRecords

    logger = logging.getLogger(TASK_RUNS)
    record = logger.makeRecord(TASK_RUNS, logging.INFO, __file__, 0, message, None, None,
                               extra={"task_name": name, "task_run_name": f"{name}-0"})
    for handler in logger.handlers:
        if isinstance(handler, StageRecords):
            handler.handle(record)


def test_a_runs_stages_in_a_log_one_line_each():
    """`sipas run`'s bar over its stages, from the task runs' records: a record of a stage's task means the earlier
    ones are done, its `Finished in state` record that it is done too; other tasks' records count nothing."""
    from sipas_pipeline.progress import stages

    log = io.StringIO()
    names = ["ingest", "validate", "compute", "publish"]
    with shown(log, terminal=False, quiet=0), stages("run 2024", names):
        task_record("ingest", "ingest: 63 files read")
        task_record("ingest", "Finished in state Completed()")
        task_record("served_from_manifest", "Finished in state Completed()")  # not a stage
        task_record("compute", "compute: national …")  # validate logged nothing: it is done when compute starts
        task_record("compute", "Finished in state Completed()")
    lines = [x.rsplit(",", 1)[0] for x in log.getvalue().splitlines()]
    assert lines == ["run 2024: ingest done: 1/4 (25%)", "run 2024: compute: 2/4 (50%)",
                     "run 2024: compute done: 3/4 (75%)", "run 2024: done: 4/4 (100%)"]


def test_a_failed_run_leaves_its_bar_where_it_stopped():
    from sipas_pipeline.progress import stages

    log = io.StringIO()
    with pytest.raises(RuntimeError), shown(log, terminal=False, quiet=0), stages("run 2024", ["ingest", "validate"]):
        task_record("ingest", "Finished in state Completed()")
        raise RuntimeError("stopped")
    assert [x.rsplit(",", 1)[0] for x in log.getvalue().splitlines()] == ["run 2024: ingest done: 1/2 (50%)"]


def test_a_runs_stages_on_a_terminal_and_nothing_without_a_command():
    import logging

    from sipas_pipeline.progress import TASK_RUNS, stages

    out = io.StringIO()
    with shown(out, terminal=True), stages("run 2024", ["ingest", "validate"]):
        task_record("ingest", "Finished in state Completed()")
    assert "run 2024" in out.getvalue() and "━" in out.getvalue()
    with stages("run 2024", ["ingest"]):  # no command shows progress: no handler, nothing printed
        assert not logging.getLogger(TASK_RUNS).handlers or all(
            type(h).__name__ != "StageRecords" for h in logging.getLogger(TASK_RUNS).handlers)
    assert all(type(h).__name__ != "StageRecords" for h in logging.getLogger(TASK_RUNS).handlers)


@pytest.mark.integration
def test_sipas_run_in_a_log_prints_its_stages(tmp_path, sample_year, prefect_harness):
    """The real command, its stderr a pipe (not a terminal): one plain line per stage once the run has taken 5 s,
    whole lines (no wrapping), the stages in order."""
    import os
    import re
    import subprocess
    import sys

    env = os.environ | {"COLUMNS": "40"}  # a narrow log must not wrap the lines
    done = subprocess.run([sys.executable, "-m", "sipas_pipeline.cli", "run", "--year", "2024", "--raw", str(sample_year),
                           "--db", str(tmp_path / "s.duckdb"), "--work", str(tmp_path / "work"), "--no-report"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [x for x in done.stderr.splitlines() if x.startswith("run 2024: ")]
    stage = re.compile(r"^run 2024: (\w+)( done)?: (\d)/5 \(\d+%\), \d+\.\d s$")
    assert all(stage.match(x) for x in lines), lines
    if lines:  # a quick machine finishes within the quiet 5 s: nothing to show
        assert [int(stage.match(x)[3]) for x in lines] == sorted({int(stage.match(x)[3]) for x in lines})
        assert lines[-1].startswith(("run 2024: report done: 5/5", "run 2024: done: 5/5"))

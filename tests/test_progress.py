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

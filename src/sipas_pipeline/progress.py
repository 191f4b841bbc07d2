"""Progress of long work (a synthetic year's provinces, an export's files): the pure functions call `track` over
what they loop on; a command shows it with `shown` — a Rich progress bar on a terminal, plain lines in a log (one
per tenth of the work, never wrapped, once it has taken 5 s); nothing at all when no command asked (the flow's own
tasks) or the work was quick. `stages` shows a flow run's stages the same way, from its task runs' log records."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Protocol, TextIO, TypeVar

T = TypeVar("T")


class Reporter(Protocol):
    def start(self, what: str, total: int) -> object: ...
    def advance(self, handle: object, done: int, what: str | None = None) -> None: ...
    def finish(self, handle: object) -> None: ...


_reporter: ContextVar[Reporter | None] = ContextVar("sipas_progress", default=None)


def track(items: Iterable[T], total: int, what: str) -> Iterator[T]:
    """Yield `items`, reporting each one done against `total` under the label `what` (when a command shows progress)."""
    reporter = _reporter.get()
    if reporter is None or total <= 0:
        yield from items
        return
    handle = reporter.start(what, total)
    done = 0
    try:
        for item in items:
            yield item
            done += 1
            reporter.advance(handle, done)
    finally:
        reporter.finish(handle)


QUIET_SECONDS = 5.0  # work done sooner prints no progress line in a log (a quick command's output stays its own)


class PlainLines:
    """Progress as plain lines on a stream that is not a terminal: `what: done/total (pct%), seconds`, at most one
    line per tenth of the work and one at the end, once the work has taken `quiet` seconds."""

    def __init__(self, stream: TextIO, quiet: float = QUIET_SECONDS) -> None:
        self.stream, self.quiet = stream, quiet

    def start(self, what: str, total: int) -> list:
        return [what, total, time.perf_counter(), 0]

    def advance(self, handle: list, done: int, what: str | None = None) -> None:
        handle[0] = what or handle[0]
        what, total, t0, last = handle
        tenth = done * 10 // total
        if (tenth > last or done == total) and time.perf_counter() - t0 >= self.quiet:
            handle[3] = tenth
            self.stream.write(f"{what}: {done}/{total} ({100 * done // total}%), {time.perf_counter() - t0:.1f} s\n")
            self.stream.flush()

    def finish(self, handle: list) -> None:
        pass


class RichBar:
    """Progress as a Rich progress bar (a terminal): one bar per `track`, removed when it is done."""

    def __init__(self, progress) -> None:
        self.progress = progress

    def start(self, what: str, total: int) -> object:
        return self.progress.add_task(what, total=total)

    def advance(self, handle: object, done: int, what: str | None = None) -> None:
        self.progress.update(handle, completed=done, **({"description": what} if what else {}))

    def finish(self, handle: object) -> None:
        self.progress.remove_task(handle)


@contextlib.contextmanager
def shown(stream: TextIO | None = None, terminal: bool | None = None, quiet: float = QUIET_SECONDS) -> Iterator[None]:
    """Show the progress of what runs inside: a Rich bar when `stream` (stderr) is a terminal, plain lines otherwise
    (after `quiet` seconds)."""
    stream = stream or sys.stderr
    is_terminal = stream.isatty() if terminal is None else terminal
    if is_terminal:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=Console(file=stream, force_terminal=True), transient=True)
        reporter: Reporter = RichBar(bar)
        context = bar
    else:
        reporter, context = PlainLines(stream, quiet), contextlib.nullcontext()
    token = _reporter.set(reporter)
    try:
        with context:
            yield
    finally:
        _reporter.reset(token)


TASK_RUNS = "prefect.task_runs"  # the logger of every task run's records (each names its task: `task_name`)


class StageRecords(logging.Handler):
    """Advances a bar over the stages `names` (task names, in order) from the task runs' log records: a record of a
    stage's task means the stages before it are done; its "Finished in state" record, that it is done too."""

    def __init__(self, reporter: Reporter, bar: object, what: str, names: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.reporter, self.bar, self.what, self.names, self.done = reporter, bar, what, names, 0

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, "task_name", None)
        if name not in self.names:
            return
        at = self.names.index(name)
        done = at + 1 if str(record.msg).startswith("Finished in state") else at
        if done > self.done:
            self.done = done
            label = f"{self.what}: {name} done" if done == at + 1 else f"{self.what}: {name}"
            try:
                self.reporter.advance(self.bar, done, label)
            except Exception:  # progress never stops the work it shows
                self.handleError(record)


@contextlib.contextmanager
def stages(what: str, names: list[str]) -> Iterator[None]:
    """Inside `shown`: a bar (or plain lines) over a flow run's stages, the Prefect tasks named `names` in order,
    advanced as their task runs log (no Prefect import: the records of its task-run logger are read)."""
    reporter = _reporter.get()
    if reporter is None:
        yield
        return
    handle = reporter.start(what, len(names))
    handler = StageRecords(reporter, handle, what, names)
    logger = logging.getLogger(TASK_RUNS)
    logger.addHandler(handler)
    try:
        yield
        if handler.done < len(names):  # a stage with nothing to log (skipped): the run is over, all are done
            reporter.advance(handle, len(names), f"{what}: done")
    finally:
        logger.removeHandler(handler)
        reporter.finish(handle)

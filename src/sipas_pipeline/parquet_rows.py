"""Parquet written and read in bounded batches (issue #19: memory grows with the batch, not the file).

`RowGroups` writes frames as they come in row groups of a fixed number of rows, whatever the frames' sizes: the
same rows give the same bytes, read in one batch or in many. `batches` reads a list of Parquet files back as
frames of about `rows` rows, in file order. `hold` keeps a frame just written to a file (ingest's bronze) for the
next stage of the same process to take instead of reading the file back, while the file is unchanged."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

GROUP_ROWS = 16_384  # rows of a row group


class RowGroups:
    """A Parquet file written frame by frame, in row groups of exactly `group_rows` rows (the last one fewer)."""

    def __init__(self, path: Path, group_rows: int = GROUP_ROWS, compression: str = "zstd"):
        self.path, self.group_rows, self.compression = Path(path), group_rows, compression
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None

    def write(self, frame: pl.DataFrame) -> None:
        """Add rows (every frame with the columns and types of the first)."""
        table = frame.to_arrow()
        if self.schema is None:
            self.schema = table.schema
        self._pending.append(table.cast(self.schema))
        self._rows += table.num_rows
        while self._rows >= self.group_rows:
            self._flush(self.group_rows)

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables(self._pending).combine_chunks()  # one array per column: pages do not follow frames
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression=self.compression)
        self._writer.write_table(table.slice(0, rows), row_group_size=rows)
        rest = table.slice(rows)
        self._pending, self._rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self, empty: pl.DataFrame | None = None) -> None:
        """Write what is left; a file that got no rows is written from `empty` (the frame's columns, no rows)."""
        if self._rows:
            self._flush(self._rows)
        if self._writer is None:
            table = (empty if empty is not None else pl.DataFrame()).to_arrow()
            pq.write_table(table if self.schema is None else table.cast(self.schema), self.path,
                           compression=self.compression)
        else:
            self._writer.close()


HELD_ROWS = 250_000  # rows `hold` keeps at most (a year's bronze: ~85k); the oldest are let go first
_held: dict[str, tuple[tuple[int, ...], pl.DataFrame]] = {}
_held_lock = threading.Lock()


def _stamp(path: Path) -> tuple[int, ...] | None:
    """What says a file is the one written: its device, inode, size, modification and change times."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def hold(path: Path, frame: pl.DataFrame) -> None:
    """Keep `frame`, just written whole to Parquet `path`, for `batches` to take instead of reading the file back
    (ingest -> validate in one process: the same rows, no second read), as long as the file stays as written."""
    stamp = _stamp(path)
    if stamp is None:
        return
    with _held_lock:
        _held.pop(str(path), None)
        _held[str(path)] = (stamp, frame)
        while sum(f.height for _, f in _held.values()) > HELD_ROWS:
            del _held[next(iter(_held))]


def _taken(files: list[Path], keep: bool = False) -> list[pl.DataFrame] | None:
    """The frames `hold` kept for every one of `files`, each file unchanged since; else None. Unless `keep`, the
    files' frames are let go either way (they are read once)."""
    with _held_lock:
        found = [_held.get(str(f)) for f in files]
        if not keep:
            for f in files:
                _held.pop(str(f), None)
    if not files or any(h is None or _stamp(f) != h[0] for f, h in zip(files, found, strict=True)):
        return None
    return [h[1] for h in found]


def total_rows(files: list[Path]) -> int:
    """Rows in Parquet files (from their footers, or the frames `hold` kept for them)."""
    held = _taken(files, keep=True)
    if held is not None:
        return sum(f.height for f in held)
    return pl.scan_parquet(files).select(pl.len()).collect().item() if files else 0


def batches(files: list[Path], rows: int) -> Iterator[pl.DataFrame]:
    """Frames of at least `rows` rows (the last one fewer) from Parquet `files` in order: small files are joined,
    a large one is read row group by row group; files of `rows` rows or fewer in all, in one read (or taken from
    what `hold` kept for them)."""
    if total_rows(files) <= rows:
        held = _taken(files)
        if held is not None:
            yield pl.concat(held, how="vertical")
        elif files:
            yield pl.read_parquet(files)
        return
    _taken(files)  # read in batches: what was kept is let go
    pending: list[pl.DataFrame] = []
    held = 0
    for f in files:
        meta = pq.ParquetFile(f)
        pieces = ([pl.read_parquet(f)] if meta.metadata.num_rows <= rows else
                  (pl.from_arrow(meta.read_row_group(i)) for i in range(meta.num_row_groups)))
        for piece in pieces:
            pending.append(piece)
            held += piece.height
            if held >= rows:
                yield pl.concat(pending, how="vertical")
                pending, held = [], 0
    if pending:
        yield pl.concat(pending, how="vertical")

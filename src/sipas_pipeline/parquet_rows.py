"""Parquet written and read in bounded batches (issue #19: memory grows with the batch, not the file).

`RowGroups` writes frames as they come in row groups of a fixed number of rows, whatever the frames' sizes: the
same rows give the same bytes, read in one batch or in many. `batches` reads a list of Parquet files back as
frames of about `rows` rows, in file order."""

from __future__ import annotations

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


def total_rows(files: list[Path]) -> int:
    """Rows in Parquet files (from their footers)."""
    return pl.scan_parquet(files).select(pl.len()).collect().item() if files else 0


def batches(files: list[Path], rows: int) -> Iterator[pl.DataFrame]:
    """Frames of at least `rows` rows (the last one fewer) from Parquet `files` in order: small files are joined,
    a large one is read row group by row group; files of `rows` rows or fewer in all, in one read."""
    if total_rows(files) <= rows:
        if files:
            yield pl.read_parquet(files)
        return
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

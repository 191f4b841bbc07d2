"""A large text export read in parts (issue #19: memory grows with the part, not the file). The file is read in
blocks, hashed as read, and cut after a line end that stands outside quotes; each part is decoded, normalised
(NFC, line ends, zero-width characters) and parsed as `readers.read_text` parses a whole file: the first part
finds the encoding, the separator and the header, the later ones are read under that header."""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sipas_pipeline.ingest.readers import (
    TEXT_SUFFIXES,
    RawTable,
    Score,
    UnreadableFile,
    clean_utf8,
    detect,
    line_endings,
    parse_first,
    parse_more,
    text_info,
)

WHOLE_BYTES = 12 << 20  # a text export up to this size is read whole (a year's largest is ~10 MB): one part
PART_BYTES = 4 << 20  # bytes of a part of a larger one (~12.7k citizens' forms; benchmarks/memory.py)
FIRST_PART = 1 << 16  # the first part holds at least the 64 KiB the separator and encoding hints are read from


class Reencode(Exception):
    """A later part of a file read as UTF-8 is not UTF-8: the file is read again from the start as cp1258."""

    def __init__(self, tried: list[str]):
        self.tried = tried
        super().__init__("; ".join(tried))


def in_parts(path: Path, part_bytes: int | None = None) -> bool:
    """Whether `path` is read in parts: a text export larger than WHOLE_BYTES (or than `part_bytes` when given)
    whose encoding is ASCII-based (UTF-16 ones, rare and small, are read whole)."""
    limit = part_bytes or max(WHOLE_BYTES, PART_BYTES)
    if path.suffix.lower() not in TEXT_SUFFIXES or path.stat().st_size <= limit:
        return False
    with path.open("rb") as f:
        head = f.read(4096)
    return not head.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in head


def cut_at(buf: bytes, quotes_before: int) -> int:
    """Where `buf` may be cut: just after its last line end outside quotes (an even number of quote characters
    since the file's start, `quotes_before` of them before `buf`), or 0 when there is none."""
    pos = buf.rfind(b"\n")
    odd = pos >= 0 and (quotes_before + buf.count(b'"', 0, pos)) & 1
    while pos >= 0 and odd:
        prev = buf.rfind(b"\n", 0, pos)
        odd ^= buf.count(b'"', max(prev, 0), pos) & 1
        pos = prev
    return pos + 1


def raw_parts(f: BinaryIO, part_bytes: int, hasher: hashlib._Hash) -> Iterator[tuple[int, bytes]]:
    """(byte offset, bytes) of a file in parts of about `part_bytes` that end at a record's end (the last one where
    the file ends); every byte read goes through `hasher`."""
    buf, offset, quotes, want = b"", 0, 0, max(part_bytes, FIRST_PART)
    while block := f.read(part_bytes):
        hasher.update(block)
        buf += block
        if len(buf) < want or not (cut := cut_at(buf, quotes)):
            continue
        part, buf = buf[:cut], buf[cut:]
        quotes += part.count(b'"')
        yield offset, part
        offset, want = offset + cut, part_bytes
    if buf or not offset:
        yield offset, buf


def _decode(path: Path, raw: bytes, offset: int, enc: str, tried: list[str], retry: bool) -> str:
    """A later part as NFC text in the encoding the first part was read in; a UTF-8 one that is not UTF-8 after
    all asks for the file to be read again (`Reencode`), another encoding that fails is the first part's error."""
    try:
        return unicodedata.normalize("NFC", raw.decode("utf-8" if enc == "utf-8-sig" else enc))
    except UnicodeDecodeError as exc:
        failed = f"{enc} (failed: {exc.reason} at byte {offset + exc.start})"
        if enc == "utf-8" and retry:
            raise Reencode([failed]) from exc
        raise UnreadableFile(path, "encoding not recognised (tried " + "; ".join([*tried[:-1], failed]) + ")") from exc


def read_parts(path: Path, hasher: hashlib._Hash, score: Score | None = None, part_bytes: int | None = None,
               tried: list[str] | None = None) -> Iterator[RawTable]:
    """The RawTables of a text export, one per part (see the module). Every table shares the first one's `info`,
    whose `line_endings` is completed once the last part is read. `tried`: the encodings that failed on an earlier
    read (after `Reencode`): the file is then read as cp1258."""
    part_bytes = part_bytes or PART_BYTES
    counts: Counter[str] = Counter()
    info: dict = {}
    lines, names, header_line = 0, [], 1
    with path.open("rb") as f:
        for offset, raw in raw_parts(f, part_bytes, hasher):
            if not offset:
                if not raw.strip():
                    raise UnreadableFile(path, "empty file")
                if tried is None:
                    text, enc, used = detect(raw, path)
                else:
                    enc, used = "cp1258", [*tried, "cp1258"]
                    text = _decode(path, raw, 0, enc, used, retry=False)
                data, found = clean_utf8(text)
                table = parse_first(path, data, score, text_info(path, text, data, enc, used, found))
                info, names, header_line = table.info, table.frame.columns, table.info["header_row"]
            else:
                data, found = clean_utf8(_decode(path, raw, offset, enc, used, retry=tried is None))
                part = parse_more(path, data, info["separator"], names, header_line, lines)
                table = RawTable(part.frame, part.line, part.shape, info)
            counts.update(found)
            lines += data.count(b"\n")
            yield table
    info["line_endings"] = line_endings({k: counts[k] for k in ("CRLF", "LF", "CR") if counts[k]})

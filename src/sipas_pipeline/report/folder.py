"""The release folder: built whole beside its target and swapped in, so a failure (a full disk, a bad path) leaves
the previous release as it was. Only a folder the tool made for a release is ever replaced; the files it did not
write there (an analyst's commentary, drafts) are carried over into the new release, never deleted."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sipas_pipeline.errors import STORAGE_ERRNOS, InputError, StorageError, UserError, folder_problem, storage_error
from sipas_pipeline.paths import MARKER, marker_purpose, write_marker

PURPOSE = "report"  # the marker's purpose for a release folder
WRITTEN = ".sipas-release.json"  # the files the tool wrote into the release (the rest are the analyst's)


def target(out: Path) -> Path:
    """The release folder as an absolute path, checked: InputError (one line) for a symbolic link, a path that is
    not a folder or lies under a file, a folder the tool made for something else, or a folder of other files."""
    out = Path(os.path.abspath(out))
    if out.is_symlink():
        raise InputError(f"{out}: is a symbolic link: give the folder itself with --out (nothing was written)")
    above = next((p for p in out.parents if p.exists() or p.is_symlink()), None)
    if above is not None and not above.is_dir():
        raise InputError(f"{out}: {above} is a file, not a folder: give a folder path with --out (nothing was written)")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file, not a folder: give a folder path with --out (nothing was written)")
    if out.is_dir() and any(out.iterdir()):
        purpose = marker_purpose(out)
        if purpose is None:
            names = sorted(p.name for p in out.iterdir())
            raise InputError(f"{out}: not empty and not made by sipas (holds {', '.join(names[:5])}"
                             f"{' …' if len(names) > 5 else ''}): nothing written; choose an empty or new folder with --out")
        if purpose != PURPOSE:
            raise InputError(f"{out}: made by sipas for another purpose ({purpose}), not a release: nothing written; "
                             "choose another folder with --out")
    return out


def own_files(out: Path) -> set[str]:
    """The names of the files the tool wrote into the release folder `out` (from its list)."""
    try:
        return set(json.loads((out / WRITTEN).read_text(encoding="utf-8"))) | {MARKER, WRITTEN}
    except (OSError, ValueError):
        return {MARKER, WRITTEN}


def theirs(out: Path) -> list[Path]:
    """What lies in the release folder `out` that the tool did not write (kept across releases)."""
    if not out.is_dir():
        return []
    mine = own_files(out)
    return sorted(p for p in out.iterdir() if p.name not in mine)


def build_and_swap(out: Path, write: Callable[[Path], list[Path]]) -> list[Path]:
    """Write a release with `write(folder) -> files` into a fresh folder beside `out`, carry over the files of the
    analyst's already in `out`, and swap it in for `out`. Any failure removes the fresh folder and leaves `out` as it
    was: one line (StorageError for a full disk or an unwritable folder, or the write's own UserError)."""
    out = target(out)
    fresh = out.with_name(f".{out.name}.sipas-new-{os.getpid()}")
    old = out.with_name(f".{out.name}.sipas-old-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        write_marker(fresh, PURPOSE)
        files = write(fresh)
        clash = [p.name for p in theirs(out) if (fresh / p.name).exists()]
        if clash:
            raise InputError(f"{out}: holds {', '.join(clash)}, not written by sipas, where the release writes its own: "
                             "nothing replaced; move them away and run again")
        for p in theirs(out):  # the analyst's files come along (copies; the originals stay until the swap)
            (shutil.copytree(p, fresh / p.name, symlinks=True) if p.is_dir() and not p.is_symlink()
             else shutil.copy2(p, fresh / p.name, follow_symlinks=False))
        (fresh / WRITTEN).write_text(json.dumps(sorted(p.name for p in files)), encoding="utf-8")
        if out.exists():
            os.replace(out, old)
        try:
            os.replace(fresh, out)
        except BaseException:
            if old.exists():
                os.replace(old, out)
            raise
    except BaseException as exc:
        shutil.rmtree(fresh, ignore_errors=True)
        if isinstance(exc, UserError):
            raise
        code = folder_problem(out.parent) if isinstance(exc, Exception) else None
        problem = storage_error(exc, out.parent)
        if problem is not None or code is not None:
            why = str(problem).rsplit(": ", 1)[-1] if problem is not None else STORAGE_ERRNOS[code]
            raise StorageError(f"{out}: cannot write the release: {why}; the previous release is as it was: free space "
                               "there or choose another --out") from None
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)
    return [out / p.relative_to(fresh) for p in files]

"""Test data kept from one test session to the next: what the code makes the same way every time (a synthetic
year of a given seed, a work folder computed from it, the wheel), in `.test-data/` at the checkout's root
(gitignored; `make clean` removes it). A folder is keyed by what made it: the package's source, the schemas, the
lock file, the Python version and the recipe's own name and arguments; any change of them makes it again. A
folder holds a list of its files with their SHA-256, checked before it is used again: a test that changed a kept
folder (they are read-only by contract) costs a rebuild, never a wrong answer. Across xdist workers the first
one makes a folder under a file lock; the others wait and use it."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from sipas_pipeline.hashing import code_fingerprint, sha256_file

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT / ".test-data"
LIST = ".files.json"


def key(recipe: str) -> str:
    """What makes a kept folder: the recipe (its name and arguments), the package's source, the schemas, the lock
    file, this interpreter."""
    digest = hashlib.sha256(f"{recipe}\n{sys.version}\n{code_fingerprint()}\n".encode())
    for path in [*sorted((ROOT / "schemas").rglob("*")), ROOT / "requirements.lock", ROOT / "pyproject.toml"]:
        if path.is_file():
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()[:20]


def _listing(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != LIST and "__pycache__" not in p.parts}


def _intact(folder: Path) -> bool:
    listed = folder / LIST
    return listed.is_file() and json.loads(listed.read_text(encoding="utf-8")) == _listing(folder)


def kept(name: str, recipe: str, make: Callable[[Path], None]) -> Path:
    """The folder `name` made by `make(folder)` for `recipe`: kept from an earlier session when its key and its
    files are unchanged, else made again (older folders of that name removed)."""
    KEPT.mkdir(exist_ok=True)
    folder = KEPT / f"{name}-{key(recipe)}"
    with open(KEPT / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if folder.is_dir() and _intact(folder):
            return folder
        for old in KEPT.glob(f"{name}-*"):
            shutil.rmtree(old)
        make(folder)  # in place (a virtual environment cannot move): the list, written last, marks it whole
        (folder / LIST).write_text(json.dumps(_listing(folder)), encoding="utf-8")
        return folder


def synthetic_year(survey_year: int, scale: float) -> Path:
    """The synthetic year `survey_year` at `scale` (seed 7) as `sipas sample` writes it, kept (read it, never
    change it: copy it to change it)."""
    from sipas_pipeline.synth import generate_year

    return kept(f"year_{survey_year}_x{scale:g}", f"generate_year({survey_year}, seed=7, scale={scale!r})",
                lambda raw: generate_year(survey_year, raw, seed=7, scale=scale))


def tiny_year(survey_year: int) -> Path:
    """The synthetic year at 2% of full size (`synthetic_year`)."""
    return synthetic_year(survey_year, 0.02)


def prefect_database() -> Path:
    """A Prefect database with this Prefect's migrations applied (`prefect server database upgrade`), kept: the
    session's server starts on a copy of it without migrating (tests/session_shared.py)."""
    import subprocess

    def make(folder: Path) -> None:
        folder.mkdir()
        env = os.environ | {"PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder / 'prefect.db'}"}
        subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"], env=env, check=True,
                       capture_output=True, timeout=600)

    return kept("prefect_database", "prefect server database upgrade -y", make)


def migrated_prefect_database(to: Path) -> Path:
    """A copy of the kept migrated Prefect database (`prefect_database`) at `to`, for a server of its own: migrated,
    with no other test's runs or deployments in it."""
    shutil.copyfile(prefect_database() / "prefect.db", to)
    return to

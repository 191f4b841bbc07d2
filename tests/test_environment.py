"""The environment is the lock: every package installed at the version `requirements.lock` pins (markers
evaluated for this interpreter), none missing, none extra; and every dependency pyproject.toml declares is in
the lock (a dependency added without `make lock` fails here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
NOT_LOCKED = {"pip", "sipas-pipeline"}  # the installer, and the project itself (installed editable from the checkout)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)\s*(?:;\s*(.+?))?\s*\\?$")


def locked(text: str, environment: dict[str, str] | None = None) -> dict[str, str]:
    """Package -> version of the lock's pins that apply here (a pin's marker evaluated for `environment`)."""
    out = {}
    for line in text.splitlines():
        m = PIN.match(line)
        if m and (m.group(3) is None or Marker(m.group(3)).evaluate(environment)):
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def differences(lock: dict[str, str], installed: dict[str, str]) -> list[str]:
    """What differs between the lock and the installed packages, one line each."""
    lines = []
    for name in sorted(set(lock) | set(installed)):
        want, have = lock.get(name), installed.get(name)
        if want != have:
            lines.append(f"{name}: locked {want or '(not in the lock)'}, installed {have or '(missing)'}")
    return lines


def test_locked_reads_pins_and_their_markers():
    text = ("numpy==2.4.6 ; python_full_version < '3.12' \\\n    --hash=sha256:ab\n"
            "numpy==2.5.5 ; python_full_version >= '3.12' \\\n    --hash=sha256:cd\nduckdb==2.0.1 \\\n    # via x\n")
    assert locked(text, {"python_full_version": "3.11.9"}) == {"numpy": "2.4.6", "duckdb": "2.0.1"}
    assert locked(text, {"python_full_version": "3.13.0"}) == {"numpy": "2.5.5", "duckdb": "2.0.1"}
    assert differences({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "1"}) == [
        "b: locked 2, installed 3", "c: locked (not in the lock), installed 1"]


def test_installed_environment_is_the_lock():
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    lock = locked(LOCK.read_text(encoding="utf-8"))
    assert len(lock) > 50
    found = differences(lock, {k: v for k, v in installed.items() if k not in NOT_LOCKED})
    assert not found, "the environment differs from requirements.lock (reinstall: make .venv/bin/.installed):\n" + \
        "\n".join(found)


def test_every_declared_dependency_is_locked():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [Requirement(r) for r in project["dependencies"] + [d for ds in project["optional-dependencies"].values()
                                                                 for d in ds]]
    lock = locked(LOCK.read_text(encoding="utf-8"))
    missing = [str(r) for r in declared if canonicalize_name(r.name) not in lock or lock[canonicalize_name(r.name)]
               not in r.specifier]
    assert not missing, f"declared in pyproject.toml but not locked: {missing} (run: make lock)"


@pytest.mark.integration
def test_make_lock_reproduces_the_committed_lock(tmp_path):
    """`make lock`, the documented update, run into a copy of the lock (LOCK_OUT): uv keeps every pin that still
    satisfies pyproject.toml, so a lock in step with pyproject.toml comes back byte for byte (asks the registry)."""
    copy = tmp_path / "requirements.lock"
    shutil.copyfile(LOCK, copy)
    done = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "lock", f"LOCK_OUT={copy}"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert copy.read_text(encoding="utf-8") == LOCK.read_text(encoding="utf-8"), \
        "requirements.lock is not what `make lock` resolves from pyproject.toml: run make lock and commit it"

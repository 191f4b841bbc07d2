"""The project's wheel in a fresh virtual environment outside the checkout, as a Prefect worker machine has it:
built once per session from a copy of the checkout (the checkout gets no build/ folder) and shared by every test
that needs it (`wheel_venv` in conftest). The environment holds the wheel alone; its dependencies are this
environment's, seen through a .pth file (installing them again would cost minutes and prove nothing more), and
it has the `prefect` command a normal install of the wheel brings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(folder: Path) -> None:
    """folder/dist/<the wheel>, folder/venv/ with it installed; folder/venv/bin/prefect."""
    source, dist, env_dir = folder / "source", folder / "dist", folder / "venv"
    source.mkdir(parents=True)
    for part in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / part, source / part)
    for part in ("src", "schemas"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(source)],
                   check=True, capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    str(wheel(folder))], check=True, capture_output=True, timeout=600)
    (site_packages(folder) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    prefect = env_dir / "bin" / "prefect"  # the console script prefect's own wheel installs
    prefect.write_text(f"#!{python}\nimport sys\nfrom prefect.cli import app\nsys.exit(app())\n", encoding="utf-8")
    prefect.chmod(0o755)
    shutil.rmtree(source)


def wheel(folder: Path) -> Path:
    return next((folder / "dist").glob("sipas_pipeline-*.whl"))


def site_packages(folder: Path) -> Path:
    python = folder / "venv" / "bin" / "python"
    return Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what points into the checkout or at the session's Prefect server."""
    drop = ("SIPAS_SCHEMAS", "PYTHONPATH", "VIRTUAL_ENV", "PREFECT_API_URL", "PREFECT_HOME", "SIPAS_DATA")
    return {k: v for k, v in os.environ.items() if k not in drop} | extra

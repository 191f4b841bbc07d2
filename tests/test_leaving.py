"""`sipas` leaves right after its exit hooks (cli._leave_now): the exit code and what Python prints of a
`sys.exit(message)` are as without it, the message once."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import atexit, sys, types
sys.modules.setdefault("prefect", types.ModuleType("prefect"))  # _leave_now acts once Prefect is imported
from sipas_pipeline import cli
atexit.register(cli._leave_now)
atexit.register(lambda: print("hook ran", flush=True))  # registered later: runs before _leave_now
code = {code!r}
cli.LEAVING.append(code)
raise SystemExit(code)
"""


@pytest.mark.parametrize(("code", "rc", "stderr"), [("error: stopped here", 1, "error: stopped here\n"), (3, 3, ""),
                                                    (None, 0, "")])
def test_leaving_keeps_the_exit_code_and_prints_a_message_once(code, rc, stderr):
    done = subprocess.run([sys.executable, "-c", CHILD.format(code=code)], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr, done.stdout) == (rc, stderr, "hook ran\n")

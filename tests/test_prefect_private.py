"""Prefect's private names stay out of the project: every Python file but `orchestration/server.py` (the embedded
server's lifecycle, the one module that would be allowed one) is read for an import of a private Prefect module
(`prefect._x`, `prefect.a._b`) and for a `_private` attribute of a Prefect object; server.py itself uses none
today, and the public behaviour it relies on is checked against the installed (locked) Prefect."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIFECYCLE = ROOT / "src" / "sipas_pipeline" / "orchestration" / "server.py"


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def prefect_module(module: str | None) -> bool:
    return module is not None and (module == "prefect" or module.startswith("prefect."))


def root_name(node: ast.AST) -> str | None:
    """The name an expression starts from: `a` in `a.b(c).d[0]`."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def private_prefect_uses(source: str) -> list[str]:
    """Private Prefect names in a module's source: imports of private modules or names, and private attributes
    (`x._y`, `getattr(x, "_y")`) of names bound to Prefect: imported from it, or assigned from such a name."""
    tree = ast.parse(source)
    bound: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if prefect_module(alias.name):
                    bound.add((alias.asname or alias.name).split(".")[0])
                    if any(private(part) for part in alias.name.split(".")):
                        found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and prefect_module(node.module):
            if any(private(part) for part in node.module.split(".")):
                found.append(f"line {node.lineno}: from {node.module} import ...")
            for alias in node.names:
                bound.add(alias.asname or alias.name)
                if private(alias.name):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    changed = True
    while changed:  # names assigned from Prefect names are Prefect objects too (`server = SubprocessASGIServer()`)
        changed = False
        for node in ast.walk(tree):
            targets = (node.targets if isinstance(node, ast.Assign) else [node.optional_vars]
                       if isinstance(node, ast.withitem) and node.optional_vars is not None else [])
            value = node.value if isinstance(node, ast.Assign) else getattr(node, "context_expr", None)
            if value is not None and root_name(value) in bound:
                for t in targets:
                    if isinstance(t, ast.Name) and t.id not in bound:
                        bound.add(t.id)
                        changed = True
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr) and root_name(node.value) in bound:
            found.append(f"line {node.lineno}: .{node.attr}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr")
                and len(node.args) >= 2 and root_name(node.args[0]) in bound):
            attr = node.args[1]
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str) and not private(attr.value)):
                found.append(f"line {node.lineno}: {node.func.id}(…, {ast.unparse(attr)})")
    return sorted(set(found))


def project_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / p for p in listed if (ROOT / p).is_file()]


def test_the_check_finds_private_prefect_names():
    """The check itself tells a private use from a public one."""
    assert private_prefect_uses("from prefect._internal import x") == ["line 1: from prefect._internal import ..."]
    assert private_prefect_uses("import prefect._version") == ["line 1: import prefect._version"]
    assert private_prefect_uses("from prefect.utilities import _helper") == ["line 1: from prefect.utilities import _helper"]
    code = "from prefect.server.api.server import S\ns = S()\nproc = s._run()\ns.start()\n"
    assert private_prefect_uses(code) == ["line 3: ._run"]
    assert private_prefect_uses("import prefect\nprefect.context._ctx\n") == ["line 2: ._ctx"]
    assert private_prefect_uses("from prefect import flow\nsetattr(flow, '_x', 1)\n") == ["line 2: setattr(…, '_x')"]
    assert private_prefect_uses("from prefect import flow\nflow.fn.__name__\nimport os\nos._exit\n") == []  # dunder, not Prefect


def test_no_private_prefect_name_outside_the_lifecycle_module():
    files = project_files()
    assert LIFECYCLE in files and len(files) > 50
    found = {str(p.relative_to(ROOT)): uses for p in files if p != LIFECYCLE
             for uses in [private_prefect_uses(p.read_text(encoding="utf-8"))] if uses}
    assert found == {}
    assert private_prefect_uses(LIFECYCLE.read_text(encoding="utf-8")) == []  # and none in the lifecycle module either


@pytest.mark.integration  # imports Prefect's server code (seconds of CPU)
def test_the_server_is_started_as_prefect_starts_it():
    """server.py starts Prefect's temporary server itself (without importing Prefect's server code): its command line
    and environment flags are those of the pinned Prefect's SubprocessASGIServer, in the same order."""
    import prefect
    from prefect.server.api.server import SubprocessASGIServer

    from sipas_pipeline.orchestration import server, server_process

    source = inspect.getsource(SubprocessASGIServer)
    command = server.server_command(4321)
    assert command[:3] == [sys.executable, "-m", "sipas_pipeline.orchestration.server_process"]
    assert command[command.index("--app-dir") + 1] == str(prefect.__module_path__.parent)
    assert server_process.factory_module(command[3:]) == "prefect.server.api.server"
    words = ["-m", "uvicorn"] + [w for w in command[3:] if w not in ("4321", command[command.index("--app-dir") + 1])]
    at = source.index("args=[")  # Prefect's command line: ours is uvicorn's arguments in its order
    for word in words:  # every word of ours in Prefect's command, in its order
        at = source.index(f'"{word}"', at) + 1
    for name, value in server.SERVER_FLAGS.items():
        assert f'"{name}": "{value}"' in source


def test_the_settings_the_lifecycle_relies_on(monkeypatch):
    """The one-shot settings the server gets are Prefect settings that turn those parts off, a user's own value wins,
    and `refresh_global_settings_context` (public) makes an imported Prefect see PREFECT_API_URL set afterwards."""
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL, Settings

    from sipas_pipeline.orchestration import server

    for name, value in (server.ONE_SHOT | server.MIGRATED).items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert not any([s.server.services.triggers.enabled, s.server.services.event_persister.enabled,
                    s.server.events.stream_out_enabled, s.server.logs.stream_out_enabled,
                    s.server.database.migrate_on_start, s.server.register_blocks_on_start,
                    s.server.memoize_block_auto_registration])
    monkeypatch.delenv("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED")
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED", "true")  # the user's own
    env = server.server_environment()
    assert env["PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"] == "true" and env["PREFECT__SERVER_EPHEMERAL"] == "1"
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    refresh_global_settings_context()
    try:
        assert PREFECT_API_URL.value() == "http://127.0.0.1:1/api"
    finally:  # this process's environment back (the session's server among it), then Prefect's settings from it:
        monkeypatch.undo()  # a context refreshed without them sent a later in-process flow to an unmigrated server
        refresh_global_settings_context()

"""The embedded Prefect server's own process: `python -m sipas_pipeline.orchestration.server_process <uvicorn's
arguments>` runs uvicorn's command line (`python -m uvicorn` runs the same `uvicorn.main`) with the arguments
Prefect's temporary server gets (`server.server_command`), after importing the app factory's module (Prefect's
server code, ~2 s) with the cyclic garbage collector paused (`collector.collector_paused`): the server answers
~0.7 s sooner. Nothing of Prefect's is changed: uvicorn then imports the same module (already loaded) and serves
the app it makes. This module imports no part of the project but `collector`."""

from __future__ import annotations

import re
import sys
from importlib import import_module

from sipas_pipeline.collector import collector_paused


def factory_module(args: list[str]) -> str | None:
    """The module of the app factory in uvicorn's arguments (`pkg.mod:create_app` -> `pkg.mod`), if any."""
    for arg in args:
        if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", arg):
            return arg.split(":", 1)[0]
    return None


def main(args: list[str]) -> None:
    """Import uvicorn and the app factory's module with the collector paused, then run uvicorn with `args`
    (it exits with uvicorn's own exit code: 3 when the port is taken)."""
    with collector_paused():
        from uvicorn.main import main as uvicorn

        app_dir = args[args.index("--app-dir") + 1] if "--app-dir" in args else None
        if app_dir is not None and app_dir not in sys.path:
            sys.path.insert(0, app_dir)  # as uvicorn does with --app-dir
        module = factory_module(args)
        if module is not None:
            import_module(module)
    uvicorn.main(args=args, prog_name="uvicorn")


if __name__ == "__main__":
    main(sys.argv[1:])

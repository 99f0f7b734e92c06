"""The `linkmon` command: the daemon's front door (``run``) and the tools, one module each.

:func:`main` hands ``linkmon run`` to :mod:`.run` (and ``linkmon fleet``, the fleet's
server, to :mod:`.fleet`) before anything else is imported, so the running daemon never loads
typer or rich (the server is not the tool, as Prometheus keeps ``prometheus`` apart from
``promtool``); every other command goes through the typer app in :mod:`.app`. This package
therefore imports nothing at the top.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        from .run import main as run_daemon

        raise SystemExit(run_daemon(sys.argv[2:]))
    if sys.argv[1:2] == ["fleet"]:  # a long-running server too: no CLI library in it
        from .fleet import main as run_fleet

        raise SystemExit(run_fleet(sys.argv[2:]))
    from .app import app

    app()

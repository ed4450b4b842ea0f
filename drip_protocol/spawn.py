"""Starting a detached local server and waiting until it answers."""
from __future__ import annotations

import os
import subprocess
import time

from .connection import Connection, try_connect
from .discovery import read_discovery, server_log_file
from .errors import ProtocolError


def spawn_server(command: list, discovery_file: str, *, log_file: str | None = None, wait: float = 60.0,
                 on_wait=None, client: str = "drip-python") -> Connection:
    """Start a detached server with ``command`` and wait until it answers.

    ``on_wait(elapsed_seconds)`` is called while waiting (for a progress bar). ``log_file`` is
    passed as the server's --log-file; an error names the log a server really wrote when there
    is one (see log_to_name).
    """
    cmd = list(command) + ["--discovery-file", discovery_file]
    if log_file:
        cmd += ["--log-file", log_file]
    kwargs = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
              "close_fds": True}
    if os.name == "nt":
        kwargs["creationflags"] = 0x00000008 | 0x08000000  # DETACHED_PROCESS | CREATE_NO_WINDOW
    else:
        kwargs["start_new_session"] = True
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # GIMP's own PYTHONPATH must not leak into the server's venv
    env.pop("PYTHONHOME", None)
    stale = read_discovery(discovery_file)
    try:
        proc = subprocess.Popen(cmd, env=env, **kwargs)
    except OSError as exc:
        raise ProtocolError("no_server", f"could not start the server ({cmd[0]}: {exc.strerror or exc})",
                            log_file=log_to_name(discovery_file, log_file, stale)) from None
    # Exit code 0 means it lost the start-up race to another server (single instance): that
    # one may not have published its discovery file yet, so keep waiting for it.
    start = time.monotonic()
    delay = 0.05
    while time.monotonic() - start < wait:
        code = proc.poll()
        # While our server starts, the old record (a port that did not answer) is not retried:
        # a program squatting on that port could hold each attempt for the hello timeout.
        if stale is None or code is not None or read_discovery(discovery_file) != stale:
            conn = try_connect(discovery_file, client=client)
            if conn is not None:
                return conn
        if code is not None and code != 0:  # (it was just tried: another server may have won)
            raise ProtocolError("no_server", f"the server exited during start-up (exit code {code})",
                                log_file=log_to_name(discovery_file, log_file, stale))
        if on_wait is not None:
            on_wait(time.monotonic() - start)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise ProtocolError("no_server", f"the server did not come up within {wait:.0f} s",
                        log_file=log_to_name(discovery_file, log_file, stale))


def log_to_name(discovery_file: str, log_file: str | None, stale: dict | None = None) -> str | None:
    """The log to point the user at when a server did not come up: the one a server that
    published since (``stale``: the record before the start) names; else ``log_file`` once the
    started server created it; else the existing log of the server that left the old record;
    else ``log_file``, where the server was told to log (the caller may drop it if absent)."""
    record = read_discovery(discovery_file)
    if record is not None and record != stale:
        return server_log_file(discovery_file, log_file)
    for path in (log_file, server_log_file(discovery_file)):
        if path and os.path.exists(path):
            return path
    return log_file

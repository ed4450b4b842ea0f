"""Starting a detached local server and waiting until it answers."""
from __future__ import annotations

import os
import subprocess
import time

from .connection import Connection, try_connect
from .discovery import read_discovery
from .errors import ProtocolError


def spawn_server(command: list, discovery_file: str, *, log_file: str | None = None, wait: float = 60.0,
                 on_wait=None, client: str = "drip-python") -> Connection:
    """Start a detached server with ``command`` and wait until it answers.

    ``on_wait(elapsed_seconds)`` is called while waiting (for a progress bar).
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
                            log_file=log_file) from None
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
                                log_file=log_file)
        if on_wait is not None:
            on_wait(time.monotonic() - start)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise ProtocolError("no_server", f"the server did not come up within {wait:.0f} s", log_file=log_file)

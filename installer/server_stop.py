"""Stopping a running drip-server before its files are replaced or removed.

The discovery file names host, port, token and pid. The polite way is the protocol's
'shutdown' request; if that is impossible, the pid gets SIGTERM (TerminateProcess on
Windows). Standard library only (so is the drip_protocol package).
"""
from __future__ import annotations

import os
import signal
import time

import drip_protocol as protocol


def _wait_gone(pid, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not protocol.pid_alive(pid):
            return True
        time.sleep(0.1)
    return not protocol.pid_alive(pid)


def running_server(discovery_file: str | None = None) -> dict | None:
    """The discovery record of a server that seems to be running, or None."""
    path = discovery_file or protocol.default_discovery_file()
    record = protocol.read_discovery(path)
    if record is None:
        return None
    pid = record.get("pid")
    if isinstance(pid, int) and os.name == "posix" and not protocol.pid_alive(pid):
        return None
    return record


def describe(record: dict) -> str:
    """The server a discovery record names, as the plan and the log call it."""
    return f"the running Drip server (pid {record.get('pid')}, {record.get('host')}:{record.get('port')})"


def stop_server(discovery_file: str | None = None, log=print, wait: float = 15.0) -> bool:
    """Stop the server the discovery file names; True if one was running."""
    path = discovery_file or protocol.default_discovery_file()
    record = running_server(path)
    if record is None:
        return False
    pid = record.get("pid")
    log(f"stopping {describe(record)}")
    asked = False
    try:
        with protocol.Connection(record["host"], record["port"], record["token"], client="drip-installer",
                                 idle_timeout=10.0) as conn:
            conn.request({"type": "shutdown"})
            asked = True
    except (protocol.ProtocolError, OSError) as exc:
        log(f"  the server did not accept a shutdown request ({exc}); terminating it")
    if isinstance(pid, int) and pid > 0:
        if asked and _wait_gone(pid, wait):
            return True
        if protocol.pid_alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
            if not _wait_gone(pid, wait) and hasattr(signal, "SIGKILL"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                _wait_gone(pid, 5.0)
    return True

"""Where a running server says how to reach it, and the per-user folders of the app."""
from __future__ import annotations

import json
import os
import stat
import sys

APP_DIR_NAME = "drip-matting"

DISCOVERY_ENV = "DRIP_MATTING_SERVER_FILE"


def user_dir(kind: str = "state") -> str:
    """Per-user folder of this app: ``kind`` is "state" (discovery file, server log),
    "config" (settings) or "data" (virtual environment, models), by each OS's convention."""
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        env = "APPDATA" if kind == "config" else "LOCALAPPDATA"
        base = os.environ.get(env) or os.path.join(home, "AppData",
                                                   "Roaming" if kind == "config" else "Local")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        env, default = {"state": ("XDG_STATE_HOME", ".local/state"), "config": ("XDG_CONFIG_HOME", ".config"),
                        "data": ("XDG_DATA_HOME", ".local/share")}[kind]
        base = os.environ.get(env) or os.path.join(home, *default.split("/"))
    return os.path.join(base, APP_DIR_NAME)

def state_dir() -> str:
    """Per-user state directory (discovery file, server log)."""
    return user_dir("state")

def default_discovery_file() -> str:
    return os.environ.get(DISCOVERY_ENV) or os.path.join(state_dir(), "server.json")

def default_log_file() -> str:
    return os.path.join(state_dir(), "server.log")

def server_log_file(discovery_file: str, fallback: str | None = None) -> str | None:
    """The log file of the server the discovery file describes (running, or one that crashed and
    left its record), else ``fallback``. The record names the log the server really writes; the
    per-user default is only a guess (a server started with --log-file writes elsewhere)."""
    record = read_discovery(discovery_file)
    named = record.get("log_file") if record is not None else None
    return named if isinstance(named, str) and named else fallback


def read_discovery(path: str) -> dict | None:
    """The discovery record, or None if absent, unreadable, malformed or unsafe.

    A file that others may write is ignored: anyone who can write it could point the
    plug-in at their own server.
    """
    try:
        st = os.stat(path)
        if os.name == "posix":
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None
            if hasattr(os, "getuid") and st.st_uid != os.getuid():
                return None
        with open(path, "r", encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if not isinstance(record.get("host"), str) or not isinstance(record.get("token"), str):
        return None
    if isinstance(record.get("port"), bool) or not isinstance(record.get("port"), int):
        return None
    return record

def write_discovery(path: str, record: dict) -> None:
    """Atomically write the record with mode 0600."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    write_atomically(path, json.dumps(record, indent=2).encode("utf-8"), f"{path}.{os.getpid()}.tmp", 0o600)


def write_atomically(path: str, data: bytes, tmp: str, mode: int = 0o644) -> None:
    """Write ``data`` to ``tmp``, then rename it over ``path``: a reader sees the old file or the
    new one, never half of one; a failure leaves no temporary file behind."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)  # the umask may have narrowed (or, for 0600, must not widen) it
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

def pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if os.name != "posix":
        return True  # no cheap check; the connection attempt decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

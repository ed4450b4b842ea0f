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
        base = os.environ.get(env) or os.path.join(home, "AppData", "Roaming" if kind == "config" else "Local")
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
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
        os.chmod(tmp, 0o600)
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

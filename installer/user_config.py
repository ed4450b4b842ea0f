"""drip_core's per-user config.json: the installer sets "drip_model" and can take it back.

Other keys the user put there are left alone. Standard library only.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from drip_core import config as drip_config

KEY = "drip_model"


def path() -> Path:
    return Path(drip_config.config_file())


def read() -> dict:
    try:
        data = json.loads(path().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(data: dict) -> None:
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, p)


def needs_model(model: str) -> bool:
    return read().get(KEY) != model


def set_model(model: str, record: dict) -> dict:
    """Point the server at ``model``; returns the record uninstall needs to undo it."""
    existed = path().is_file()
    data = read()
    if not record:  # first time: remember what was there before us
        record = {"path": str(path()), "created": not existed, "previous": data.get(KEY)}
    data[KEY] = model
    _write(data)
    record = dict(record)
    record["set"] = model
    return record


def undo(record: dict, log=print) -> None:
    """Take back what set_model did (only if the value is still ours)."""
    if not record:
        return
    p = Path(record.get("path") or path())
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(data, dict) or data.get(KEY) != record.get("set"):
        return
    previous = record.get("previous")
    if previous:
        data[KEY] = previous
    else:
        data.pop(KEY, None)
    if not data and record.get("created"):
        p.unlink(missing_ok=True)
        log(f"removed {p}")
        try:
            p.parent.rmdir()
        except OSError:
            pass
    else:
        tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, p)
        log(f"removed the model setting from {p}")

"""The install manifest: what this installer put where (data_dir()/install-manifest.json).

It makes a second run exact (compare instead of redo) and lets --uninstall remove exactly
what was installed. It holds no timestamps, so an unchanged installation rewrites nothing.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from drip_core import config as drip_config

NAME = "install-manifest.json"
VERSION = 1


def manifest_path() -> Path:
    return Path(drip_config.data_dir()) / NAME


def empty() -> dict:
    return {"manifest_version": VERSION, "status": "none", "venv": {}, "plugins": {}, "model": {},
            "user_config": {}}


def load(path: str | os.PathLike | None = None) -> dict:
    path = Path(path) if path else manifest_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return empty()
    if not isinstance(data, dict) or data.get("manifest_version") != VERSION:
        return empty()
    base = empty()
    base.update(data)
    return base


def save(data: dict, path: str | os.PathLike | None = None) -> bool:
    """Write the manifest if it changed; True if the file was (re)written."""
    path = Path(path) if path else manifest_path()
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


def remove(path: str | os.PathLike | None = None) -> None:
    path = Path(path) if path else manifest_path()
    path.unlink(missing_ok=True)


def clone(data: dict) -> dict:
    return copy.deepcopy(data)

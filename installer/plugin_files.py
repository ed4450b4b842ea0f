"""Copy the GIMP plug-in folder into a GIMP profile, with the shared protocol.py and a config.

The plug-in folder in git holds no copy of protocol.py: the one source is
drip_core/protocol.py, copied here at install time. The folder is assembled in a
temporary sibling and then renamed into place, so a failure never leaves a
half-installed plug-in that GIMP would try to load.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

PLUGIN_NAME = "drip_matting"
CONFIG_NAME = "drip_matting.json"
REPO_ROOT = Path(__file__).resolve().parents[1]


def plugin_source_dir() -> Path:
    """The plug-in folder shipped with this copy of Drip Matting (repo or bundle)."""
    return REPO_ROOT / "gimp_plugin" / PLUGIN_NAME


def protocol_source() -> Path:
    return REPO_ROOT / "drip_core" / "protocol.py"


def plugin_config(server_command: list[str], *, log_file: str | None = None,
                  discovery_file: str | None = None, version: str = "") -> dict:
    """The config the plug-in reads: how to start the server when none answers."""
    return {
        "config_version": 1,
        "server_command": list(server_command),
        "log_file": log_file,
        "discovery_file": discovery_file,
        "installed_version": version,
    }


def install_plugin_folder(plugins_dir: str | os.PathLike, config: dict) -> Path:
    """Install (or replace) ``plugins_dir/drip_matting/``; returns the installed folder."""
    plugins_dir = Path(plugins_dir)
    plugins_dir.mkdir(parents=True, exist_ok=True)
    target = plugins_dir / PLUGIN_NAME
    staging = Path(tempfile.mkdtemp(prefix=f".{PLUGIN_NAME}-", dir=plugins_dir))
    try:
        folder = staging / PLUGIN_NAME
        shutil.copytree(plugin_source_dir(), folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "protocol.py", CONFIG_NAME))
        shutil.copy2(protocol_source(), folder / "protocol.py")
        with open(folder / CONFIG_NAME, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
        main = folder / f"{PLUGIN_NAME}.py"
        # GIMP runs the script directly on Linux/macOS: it must be executable.
        main.chmod(main.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        old = None
        if target.exists():
            old = staging / "old"
            os.replace(target, old)
        os.replace(folder, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

"""Copy the GIMP plug-in folder into a GIMP profile, with the protocol package and a config.

The plug-in imports the wire protocol by name (``import drip_protocol``), as drip_core
does; the installer ships that package, unchanged, beside the plug-in's scripts
(``drip_matting/drip_protocol/``). The folder is assembled in a
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


PROTOCOL_PACKAGE = "drip_protocol"


def protocol_source() -> Path:
    """The stdlib-only protocol package both ends import (repo root or bundle root)."""
    return REPO_ROOT / PROTOCOL_PACKAGE


def _source_files(folder: Path):
    """Files of a source folder, without caches."""
    return [p for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]


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


def _expected_files(config: dict) -> dict[str, bytes]:
    """{relpath: content} of the folder install_plugin_folder writes."""
    src = plugin_source_dir()
    out: dict[str, bytes] = {}
    for p in _source_files(src):
        rel = p.relative_to(src).as_posix()
        if rel != CONFIG_NAME:
            out[rel] = p.read_bytes()
    for p in _source_files(protocol_source()):
        out[f"{PROTOCOL_PACKAGE}/{p.relative_to(protocol_source()).as_posix()}"] = p.read_bytes()
    out[CONFIG_NAME] = config_bytes(config)
    return out


def config_bytes(config: dict) -> bytes:
    return (json.dumps(config, indent=2) + "\n").encode("utf-8")


def main_script(folder: Path) -> Path:
    return folder / f"{PLUGIN_NAME}.py"


def plugin_folder_matches(plugins_dir: str | os.PathLike, config: dict) -> bool:
    """True when ``plugins_dir/drip_matting/`` is exactly what install_plugin_folder would write."""
    target = Path(plugins_dir) / PLUGIN_NAME
    if not target.is_dir():
        return False
    expected = _expected_files(config)
    present = {p.relative_to(target).as_posix() for p in target.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    if present != set(expected):
        return False
    for rel, content in expected.items():
        if (target / rel).read_bytes() != content:
            return False
    main = main_script(target)
    return os.name == "nt" or bool(main.stat().st_mode & stat.S_IXUSR)


def is_our_plugin(folder: str | os.PathLike) -> bool:
    """A drip_matting folder this installer wrote (it holds our config file)."""
    return (Path(folder) / CONFIG_NAME).is_file()


def install_plugin_folder(plugins_dir: str | os.PathLike, config: dict) -> Path:
    """Install (or replace) ``plugins_dir/drip_matting/``; returns the installed folder.

    The new folder is complete before it is renamed into place; if anything fails, the
    previous installation (if any) is put back and no staging folder is left.
    """
    plugins_dir = Path(plugins_dir)
    plugins_dir.mkdir(parents=True, exist_ok=True)
    target = plugins_dir / PLUGIN_NAME
    if not main_script(plugin_source_dir()).is_file():
        raise FileNotFoundError(f"the plug-in source {main_script(plugin_source_dir())} is missing: "
                                "this copy of Drip Matting is incomplete")
    staging = Path(tempfile.mkdtemp(prefix=f".{PLUGIN_NAME}-", dir=plugins_dir))
    old = None
    try:
        folder = staging / PLUGIN_NAME
        shutil.copytree(plugin_source_dir(), folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", CONFIG_NAME))
        shutil.copytree(protocol_source(), folder / PROTOCOL_PACKAGE, copy_function=shutil.copy2,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        with open(folder / CONFIG_NAME, "wb") as f:
            f.write(config_bytes(config))
        main = main_script(folder)
        # GIMP runs the script directly on Linux/macOS: it must be executable.
        main.chmod(main.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        if target.exists():
            old = staging / "old"
            os.replace(target, old)
        os.replace(folder, target)
        old = None
    finally:
        if old is not None and not target.exists():
            os.replace(old, target)  # put the previous installation back
        shutil.rmtree(staging, ignore_errors=True)
    return target

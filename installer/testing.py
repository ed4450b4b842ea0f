"""Helpers for the installer's tests: fake homes with GIMP profiles, an offline wheel and venv,
tiny DRIP model folders, and tree snapshots to prove a second run changes nothing.

No network: the drip-matting wheel is built from this tree with ``pip wheel --no-deps
--no-build-isolation`` and installed with ``--no-index --no-deps`` (torch skipped).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from . import bundle

OFFLINE_PIP = "--no-index --no-deps"
ENV_VARS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "APPDATA", "LOCALAPPDATA",
            "DRIP_MATTING_MODEL", "DRIP_MATTING_CONFIG", "DRIP_MATTING_SERVER_FILE", "DRIP_MATTING_VERIFY",
            "DRIP_INSTALLER_PIP_ARGS", "PYTHONPATH")

_cache: dict = {}
# Tools on PATH that keep state in the home folder (a rustup proxy does, when pip probes it)
# keep using the real one, so the fake home shows only what the installer did.
TOOL_HOMES = {"RUSTUP_HOME": os.path.expanduser("~/.rustup"), "CARGO_HOME": os.path.expanduser("~/.cargo")}


def fake_home(root: Path, profiles=("3.0", "3.2", "flatpak:3.0")) -> Path:
    """A home folder with GIMP profile folders (as GIMP leaves them after a first start)."""
    home = Path(root)
    for spec in profiles:
        if spec.startswith("flatpak:"):
            p = home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / spec.split(":", 1)[1]
        else:
            p = home / ".config" / "GIMP" / spec
        p.mkdir(parents=True, exist_ok=True)
        (p / "gimprc").write_text("# GIMP gimprc\n", encoding="utf-8")
    return home


def home_env(home: Path, base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    for k in ENV_VARS:
        env.pop(k, None)
    for k, v in TOOL_HOMES.items():
        env.setdefault(k, v)
    env["HOME"] = str(home)
    return env


def test_wheel(tmp_root: Path) -> Path:
    """The drip-matting wheel of this tree (built once per test session)."""
    if "wheel" not in _cache or not _cache["wheel"].exists():
        _cache["wheel"] = bundle.build_wheel(Path(tmp_root) / "wheelhouse", log=lambda *_: None)
    return _cache["wheel"]


def user_venv(tmp_root: Path, wheel: Path) -> Path:
    """A venv the *user* made (no installer marker) with drip-matting installed, once per session."""
    if "venv" not in _cache or not (_cache["venv"] / "pyvenv.cfg").exists():
        venv = Path(tmp_root) / "user-venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        subprocess.run([str(py), "-m", "pip", "install", "-q", *OFFLINE_PIP.split(), str(wheel)], check=True,
                       env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        _cache["venv"] = venv
    return _cache["venv"]


def make_model(folder: Path, payload: bytes = b"weights") -> Path:
    """A tiny folder in the DRIP model layout with a real drip.json manifest."""
    from drip_core.engines.drip.model import folder as mf
    folder = Path(folder)
    for rel in mf.REQUIRED:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text("{}\n" if rel.endswith(".json") else "x", encoding="utf-8")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(payload * 1000)
    mf.write_manifest(str(folder), options={}, trained=False)
    (folder / ".drip-hashes.json").unlink(missing_ok=True)
    return folder


def snapshot(root: Path, skip=()) -> dict:
    """{relpath: (mode, mtime_ns, sha256 or 'dir')} of everything under ``root``."""
    root = Path(root)
    out = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs
                   if not any(Path(dirpath, d).relative_to(root).as_posix().startswith(s) for s in skip)]
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if "__pycache__" in p.parts:
                continue
            st = p.lstat()
            if p.is_symlink() or p.is_dir():
                out[rel] = (st.st_mode, "dir")
            else:
                out[rel] = (st.st_mode, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def read_json(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))

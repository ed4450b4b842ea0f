"""What the terminal installer (cli.py) and the window (gui.py) share: the command line,
free disk space, and how to tell the user the command to run the installer again.

cli.py opens gui.py for --gui; gui.py imports this module, never cli.py. Standard library only.
"""
from __future__ import annotations

import argparse
import ntpath
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .options import ENGINES, Options, default_venv
from .torch_choice import TORCH_CHOICES

# Set by the PyQt6 bootstrap (cli.py) for the installer it re-runs with the venv's Python, so
# that hints still name the command the user typed, not a Python inside a folder --uninstall removes.
COMMAND_ENV = "DRIP_INSTALLER_COMMAND"
INSTALL_PY = Path(__file__).resolve().with_name("install.py")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="install.py",
        description="Install Drip Matting: a private Python environment with the matting server, the GIMP 3 "
                    "plug-in in every GIMP 3 profile, and optionally a DRIP model. Run it again at any time: "
                    "what is already in place is left alone.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--uninstall", action="store_true",
                      help="remove the plug-in folders, the environment and the settings (models are kept)")
    mode.add_argument("--upgrade", action="store_true",
                      help="rebuild the environment and reinstall the software and plug-in; models are kept")
    p.add_argument("--purge", action="store_true",
                   help="with --uninstall: also remove downloaded and imported models")
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    p.add_argument("-y", "--yes", action="store_true", help="ask no questions")
    p.add_argument("--gui", action="store_true", help="open the installer window (PyQt6)")
    p.add_argument("--venv", metavar="DIR",
                   help=f"the server's Python environment (default: {default_venv()})")
    p.add_argument("--python", metavar="PY", default=sys.executable,
                   help="the Python (3.11+) to build the environment with (default: this one)")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto (default): the classical engine (no torch), or DRIP as well when a DRIP "
                        "model is given (--drip-model) or the last install had it; drip: DRIP and the "
                        "classical engine (installs torch, gigabytes); classical: no torch, small and fast")
    p.add_argument("--torch", choices=TORCH_CHOICES, default="auto",
                   help="torch build: auto (CUDA with an NVIDIA GPU, MPS on macOS, else CPU), "
                        "cpu, cuda, or skip")
    p.add_argument("--gimp-profile", metavar="DIR", action="append", default=[],
                   help="a GIMP 3 profile folder, e.g. ~/.config/GIMP/3.0 "
                        "(repeatable; default: every one found)")
    p.add_argument("--drip-model", metavar="PATH", help="a DRIP model folder (with drip.json) to import")
    p.add_argument("--model-mode", choices=("copy", "link"), default="copy",
                   help="copy the model into the data folder (default) or use it where it is (link)")
    p.add_argument("--download-model", action="store_true",
                   help="download the DRIP model from the configured source")
    p.add_argument("--model-url", metavar="URL", help="download the DRIP model archive (zip/tar) from URL")
    p.add_argument("--model-sha256", metavar="HEX", help="expected sha256 of the --model-url archive")
    p.add_argument("--source", metavar="PATH",
                   help="drip-matting wheel or source folder to install "
                        "(default: the bundled wheel or this tree)")
    p.add_argument("--pip-args", metavar="ARGS", default=os.environ.get("DRIP_INSTALLER_PIP_ARGS", ""),
                   help="extra pip arguments, one string, e.g. --pip-args='--no-index --find-links DIR' "
                        "(offline installs, mirrors, proxies)")
    p.add_argument("--system-site-packages", action="store_true",
                   help="let the environment see the packages of --python (e.g. a torch you already have)")
    return p


def options_from(args: argparse.Namespace) -> Options:
    return Options(venv=args.venv, python=args.python, torch=args.torch, engine=args.engine,
                   gimp_profiles=list(args.gimp_profile), drip_model=args.drip_model,
                   model_mode=args.model_mode, download_model=args.download_model,
                   model_url=args.model_url, model_sha256=args.model_sha256,
                   source=args.source, pip_args=shlex.split(args.pip_args or ""),
                   system_site_packages=args.system_site_packages, upgrade=args.upgrade, purge=args.purge)


def free_mb(path: Path) -> float:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free / 1e6
    except OSError:
        return float("inf")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.abspath(a) == os.path.abspath(b) or os.path.samefile(a, b)
    except OSError:
        return False


def _basename(path: str, platform: str) -> str:
    return ntpath.basename(path) if platform == "win32" else os.path.basename(path)


def interpreter_command(executable: str | None = None, platform: str | None = None,
                        which=shutil.which) -> str:
    """The interpreter as the user would type it: ``python3`` (or ``python3.12``, ``python``) when that
    name on PATH is this very interpreter, else its full path (Windows: ``py``, the launcher)."""
    exe = executable or sys.executable
    platform = platform or sys.platform
    name = _basename(exe, platform)
    if name.lower().endswith(".exe"):
        name = name[:-4]
    found = which(name) if name else None
    if found and _same_file(found, exe):
        return name
    if platform == "win32" and which("py"):
        return "py"
    return exe


def _quote(parts: list[str], platform: str) -> str:
    return subprocess.list2cmdline(parts) if platform == "win32" else shlex.join(parts)


def installer_command(*args: str, argv0: str | None = None, executable: str | None = None,
                      platform: str | None = None, which=shutil.which) -> str:
    """The command line that runs this installer again, e.g. ``python3 installer/install.py --uninstall``."""
    platform = platform or sys.platform
    base = os.environ.get(COMMAND_ENV)
    if not base:
        argv0 = sys.argv[0] if argv0 is None else argv0
        if _basename(argv0, platform) == "install.py":
            script = argv0                          # as typed: installer/install.py, or a bundle's install.py
        else:                                       # called as a module (tests, python -m): name the script
            try:
                rel = os.path.relpath(INSTALL_PY)
            except ValueError:                      # Windows: another drive
                rel = ".."
            script = str(INSTALL_PY) if rel.startswith("..") else rel
        base = _quote([interpreter_command(executable, platform, which), script], platform)
    return " ".join([base, _quote(list(args), platform)]) if args else base

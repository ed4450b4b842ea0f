"""The private virtual environment the server runs in: create it, pip-install into it, inspect it.

Standard library only. pip runs as a child process whose output is streamed line by line
to a callback (the terminal or the window's live log).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

MARKER = ".drip-matting-venv"   # written into venvs this installer created
MIN_PYTHON = (3, 11)
# What ``python -m venv`` and pip put at the top of an environment (POSIX and Windows layouts;
# share/ and etc/ hold packages' data files); anything else there was put by someone else.
VENV_ENTRIES = frozenset({"pyvenv.cfg", "bin", "lib", "lib64", "include", "share", "etc", "man",
                          "Scripts", "Lib", "Include", ".gitignore", MARKER})


class VenvError(Exception):
    pass


def venv_python(venv: str | os.PathLike, platform: str | None = None) -> Path:
    platform = platform or sys.platform
    venv = Path(venv)
    if platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def is_venv(venv: str | os.PathLike) -> bool:
    return (Path(venv) / "pyvenv.cfg").is_file() and venv_python(venv).exists()


def ours(venv: str | os.PathLike) -> bool:
    return (Path(venv) / MARKER).is_file()


def plain_venv(venv: str | os.PathLike) -> bool:
    """A real folder (not a link), owned by this user, holding a venv's pyvenv.cfg and nothing
    but the usual layout. Used to recognise the installer's own environment without its marker."""
    venv = Path(venv)
    try:
        if venv.is_symlink() or not venv.is_dir():
            return False
        if hasattr(os, "getuid") and venv.stat().st_uid != os.getuid():
            return False
        cfg = venv / "pyvenv.cfg"
        if cfg.is_symlink() or not cfg.is_file():
            return False
        lines = cfg.read_text(encoding="utf-8").splitlines()
        keys = {line.partition("=")[0].strip().lower() for line in lines}
        return "home" in keys and all(p.name in VENV_ENTRIES for p in venv.iterdir())
    except (OSError, UnicodeDecodeError):
        return False


def python_version(python: str | os.PathLike) -> tuple[int, int, int]:
    try:
        out = subprocess.run([str(python), "-I", "-c", "import sys; print(*sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise VenvError(f"cannot run {python}: {exc.strerror or exc}") from None
    if out.returncode != 0:
        raise VenvError(f"{python} does not run: {out.stderr.strip()[-500:]}")
    return tuple(int(x) for x in out.stdout.split())  # type: ignore[return-value]


def check_python(python: str | os.PathLike) -> tuple[int, int, int]:
    version = python_version(python)
    if version[:2] < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        raise VenvError(f"{python} is Python {'.'.join(map(str, version))}; Drip Matting needs Python {need} "
                        f"or newer. Install a newer Python and run the installer with it (or pass --python).")
    return version


def run_streamed(cmd: list[str], log, *, cwd=None, env=None) -> int:
    """Run ``cmd``, passing each output line to ``log``; returns the exit code."""
    log("$ " + " ".join(str(c) for c in cmd))
    env = dict(os.environ if env is None else env)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env["PYTHONUNBUFFERED"] = "1"
    try:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace", cwd=cwd, env=env)
    except OSError as exc:
        raise VenvError(f"cannot run {cmd[0]}: {exc.strerror or exc}") from None
    assert proc.stdout is not None
    for line in proc.stdout:
        log("  " + line.rstrip())
    return proc.wait()


def create_venv(venv: str | os.PathLike, python: str | os.PathLike, log, *,
                system_site_packages: bool = False) -> None:
    """Make a venv with pip at ``venv`` (a new or empty folder). If that fails (on Debian/Ubuntu
    without python3-venv, ``venv`` stops after making a pip-less environment) the folder is
    removed again, so no later run mistakes the remains for a usable environment."""
    venv = Path(venv)
    if venv.exists() and (not venv.is_dir() or any(venv.iterdir())):
        raise VenvError(f"{venv} is not empty: cannot create a virtual environment there")
    cmd = [str(python), "-I", "-m", "venv"]
    if system_site_packages:
        cmd.append("--system-site-packages")
    cmd.append(str(venv))
    try:
        # the marker goes in first: remains of a creation killed half way are still recognisably ours
        venv.mkdir(parents=True, exist_ok=True)
        (venv / MARKER).write_text("created by the Drip Matting installer\n", encoding="utf-8")
        rc = run_streamed(cmd, log)
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    if rc != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise VenvError(f"creating the virtual environment {venv} failed (see the log above); "
                        "nothing was left there. On Debian/Ubuntu install the python3-venv package first "
                        "(sudo apt install python3-venv), then run the installer again.")


def pip_version(venv) -> tuple[int, ...]:
    out = subprocess.run([str(venv_python(venv)), "-I", "-c", "import pip; print(pip.__version__)"],
                         capture_output=True, text=True, timeout=60)
    try:
        return tuple(int(x) for x in out.stdout.strip().split(".")[:2])
    except ValueError:
        return (0,)


def robust_pip_flags(venv) -> list[str]:
    """Retries, longer timeouts and resumed downloads (pip >= 25.1) against flaky multi-GB fetches."""
    flags = ["--retries", "10", "--timeout", "60"]
    if pip_version(venv) >= (25, 1):
        flags += ["--resume-retries", "10"]
    return flags


def pip_install(venv, args: list[str], log, *, extra_args: list[str] | None = None) -> None:
    cmd = [str(venv_python(venv)), "-I", "-m", "pip", "install", *robust_pip_flags(venv),
           *(extra_args or []), *args]
    if run_streamed(cmd, log) != 0:
        if not can_import(venv, "pip"):  # not the network: this environment cannot run pip at all
            raise VenvError(f"the environment {venv} has no pip (not a network problem). On Debian/Ubuntu "
                            "install the python3-venv package, then run the installer again: an environment "
                            "it made is rebuilt then.")
        raise VenvError("pip install failed (see the log above). If a download failed, run the installer "
                        "again: finished downloads are kept and pip resumes where it can.")


def upgrade_pip(venv, log, extra_args: list[str] | None = None) -> None:
    """Update pip in ``venv`` to one that resumes broken downloads (25.1+, --resume-retries),
    unless it is that new already. An older pip still works, so a failed update is only logged."""
    if pip_version(venv) >= (25, 1):
        return
    cmd = [str(venv_python(venv)), "-I", "-m", "pip", "install", "--upgrade", "--retries", "5",
           "--timeout", "30", *(extra_args or []), "pip"]
    if run_streamed(cmd, log) != 0:
        log("  (could not update pip; going on with the one there)")


def installed_version(venv, dist: str = "drip-matting") -> str | None:
    """The version of ``dist`` in the venv, or None."""
    if not is_venv(venv):
        return None
    code = ("import importlib.metadata as m, sys\n"
            "try: print(m.version(sys.argv[1]))\n"
            "except m.PackageNotFoundError: pass\n")
    try:
        out = subprocess.run([str(venv_python(venv)), "-I", "-c", code, dist], capture_output=True, text=True,
                             timeout=60, cwd=str(venv))
    except OSError:
        return None
    return out.stdout.strip() or None


def can_import(venv, module: str) -> bool:
    if not is_venv(venv):
        return False
    try:
        out = subprocess.run([str(venv_python(venv)), "-I", "-c", f"import {module}"], capture_output=True,
                             timeout=120, cwd=str(venv))
    except OSError:
        return False
    return out.returncode == 0


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_fingerprint(source: str | os.PathLike) -> str:
    """A digest of what would be installed: the wheel file, or the source tree's package files."""
    source = Path(source)
    if source.is_file():
        return "wheel:" + file_sha256(source)
    h = hashlib.sha256()
    files = [source / "pyproject.toml"]
    for pkg in ("drip_core", "installer"):
        files += sorted(p for p in (source / pkg).rglob("*") if p.is_file() and "__pycache__" not in p.parts
                        and p.suffix != ".pyc")
    for p in files:
        if p.is_file():
            h.update(str(p.relative_to(source)).replace(os.sep, "/").encode() + b"\0")
            h.update(p.read_bytes() + b"\0")
    return "tree:" + h.hexdigest()

"""Build the one-archive download: ``python -m installer.bundle [--out dist] [--format zip|gztar]``.

The archive unpacks to ``drip-matting-<version>/`` holding:

    install.py                  run this (same as installer/install.py)
    README.txt                  what to do, in three lines
    installer/                  the installer (standard library only until the venv exists)
    gimp_plugin/drip_matting/   the GIMP plug-in
    drip_protocol/              the wire protocol package (standard library only)
    drip_core/                  the few standard-library modules the installer needs
                                (config.py, settings.py, errors.py, engines/drip/model/folder.py)
    wheels/drip_matting-<version>-py3-none-any.whl   what goes into the venv

The wheel is built from this source tree with pip (no build isolation when setuptools is
present, so it works offline).
"""
from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE_FILES = ("drip_core/__init__.py", "drip_core/config.py", "drip_core/settings.py", "drip_core/errors.py",
              "drip_core/engines/drip/__init__.py", "drip_core/engines/drip/model/__init__.py",
              "drip_core/engines/drip/model/folder.py")
# drip_core/engines/__init__.py imports the engines themselves (numpy and more), which a bare
# Python cannot load: the bundle gets an empty package in its place, so the installer can still
# import the model folder module below it. The real one is in the wheel that goes into the venv.
ENGINES_STUB = ("drip_core/engines/__init__.py",
                '"""Only what the installer needs before the venv exists; the engines are in the wheel."""\n')
LAUNCHER = '''#!/usr/bin/env python3
"""Drip Matting installer (bundle launcher): python install.py --help"""
import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "installer", "install.py"),
               run_name="__main__")
'''
README = """Drip Matting {version} - AI image matting for GIMP 3
=====================================================

1. Start GIMP 3 once (so it has a profile folder), then close it.
2. In this folder run:   python3 install.py          (Windows: py install.py)
   or with a window:     python3 install.py --gui
   Useful options: --yes (no questions), --engine classical (no torch, small),
   --torch cpu|cuda|skip, --drip-model FOLDER, --gimp-profile DIR, --dry-run.
3. Restart GIMP: Filters > Drip Matting.

Run it again at any time (it only does what is missing). Update: unpack a newer
bundle and run install.py --upgrade (models are kept). Remove: install.py --uninstall
(add --purge to delete models too). Server log: see the end of the install output.
Python 3.11 or newer is needed; on Debian/Ubuntu also: sudo apt install python3-venv
More: docs/install.md in the source repository.
"""


def version() -> str:
    ns: dict = {}
    exec((ROOT / "drip_core" / "__init__.py").read_text(encoding="utf-8"), ns)
    return ns.get("__version__", "0")


def _has_setuptools(python: str) -> bool:
    return subprocess.run([python, "-c", "import setuptools, wheel"], capture_output=True).returncode == 0


def build_wheel(out_dir: str | os.PathLike, python: str = sys.executable, log=print) -> Path:
    """Build the drip-matting wheel from a clean copy of the package sources into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="drip-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for pkg in ("drip_core", "drip_protocol", "installer"):
            shutil.copytree(ROOT / pkg, src / pkg, ignore=ignore)
        shutil.copy2(ROOT / "pyproject.toml", src / "pyproject.toml")
        readme = ROOT / "README.md"
        if readme.is_file():
            shutil.copy2(readme, src / "README.md")
        else:
            (src / "README.md").write_text("# Drip Matting\n", encoding="utf-8")
        cmd = [python, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out_dir), str(src)]
        if _has_setuptools(python):
            cmd.insert(4, "--no-build-isolation")
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"building the wheel failed:\n{proc.stdout}\n{proc.stderr}")
    wheels = sorted(out_dir.glob(f"drip_matting-{version()}-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip wheel produced no drip_matting wheel in {out_dir}")
    log(f"wheel: {wheels[-1]}")
    return wheels[-1]


def stage(dest: str | os.PathLike, wheel: str | os.PathLike | None = None, log=print) -> Path:
    """Lay out the bundle folder ``dest/drip-matting-<version>/``."""
    name = f"drip-matting-{version()}"
    top = Path(dest) / name
    if top.exists():
        shutil.rmtree(top)
    top.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "installer", top / "installer", ignore=ignore)
    plugin = Path("gimp_plugin") / "drip_matting"
    shutil.copytree(ROOT / plugin, top / plugin, ignore=ignore)
    shutil.copytree(ROOT / "drip_protocol", top / "drip_protocol", ignore=ignore)
    for rel in CORE_FILES:
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, top / rel)
    stub, text = ENGINES_STUB
    (top / stub).write_text(text, encoding="utf-8")
    (top / "wheels").mkdir()
    if wheel is None:
        wheel = build_wheel(top / "wheels", log=log)
    else:
        shutil.copy2(wheel, top / "wheels" / Path(wheel).name)
    launcher = top / "install.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    (top / "README.txt").write_text(README.format(version=version()), encoding="utf-8")
    for script in (launcher, top / "installer" / "install.py", top / plugin / "drip_matting.py"):
        if script.exists():
            script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return top


def archive(top: Path, out: Path, fmt: str = "zip") -> Path:
    """Pack the staged folder; zip keeps the executable bits (external_attr) for unzip on Unix."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in top.rglob("*") if p.is_file())
    if fmt == "zip":
        path = out / f"{top.name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for p in files:
                info = zipfile.ZipInfo.from_file(p, arcname=f"{top.name}/{p.relative_to(top).as_posix()}")
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | (p.stat().st_mode & 0o777)) << 16
                with open(p, "rb") as f:
                    z.writestr(info, f.read())
    elif fmt == "gztar":
        path = out / f"{top.name}.tar.gz"
        with tarfile.open(path, "w:gz") as t:
            t.add(top, arcname=top.name)
    else:
        raise ValueError(f"format must be zip or gztar, not {fmt!r}")
    return path


def build(out: str | os.PathLike = "dist", fmt: str = "zip", wheel=None, log=print) -> Path:
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="drip-bundle-") as tmp:
        top = stage(tmp, wheel=wheel, log=log)
        path = archive(top, out, fmt)
    log(f"bundle: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m installer.bundle", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    p.add_argument("--format", choices=("zip", "gztar"), default="zip")
    p.add_argument("--wheel", help="use this drip-matting wheel instead of building one")
    args = p.parse_args(argv)
    build(args.out, args.format, wheel=args.wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())

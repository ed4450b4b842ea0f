"""The server's Python environment as the install and uninstall steps see it: whether it is
the installer's own (and so may be rebuilt or removed), and getting a working one in place.

Standard library only.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from . import venv as venv_mod
from .options import Options, default_venv
from .plan import InstallError


def venv_is_ours(venv: Path) -> bool:
    """Did this installer make ``venv``? Its marker file says so. Without the marker (written by
    an older installer only after a successful creation, or lost) only a plain environment at the
    installer's own place in its data folder counts; a folder holding anything else never does."""
    if venv_mod.ours(venv):
        return True
    return os.path.abspath(venv) == os.path.abspath(default_venv()) and venv_mod.plain_venv(venv)


def prepare_venv(venv: Path, options: Options, log: Callable[[str], None]) -> bool:
    """Leave a working environment with pip at ``venv``; True if it was (re)created now.

    One of ours that is broken (no pip: e.g. made where python3-venv was missing) or that
    --upgrade replaces is removed and built again; anyone else's is never touched."""
    venv_mod.check_python(options.python)
    ours = venv_is_ours(venv)
    healthy = venv_mod.is_venv(venv) and venv_mod.can_import(venv, "pip")
    if venv.exists() and ours and (options.upgrade or not healthy):
        log(f"  removing the {'old' if healthy else 'broken'} environment {venv} "
            "(models and settings are kept)")
        shutil.rmtree(venv)
    elif venv.exists() and not venv_mod.is_venv(venv) and (not venv.is_dir() or any(venv.iterdir())):
        raise InstallError(f"{venv} exists and is not a virtual environment: choose another --venv")
    elif venv_mod.is_venv(venv) and not healthy:
        raise InstallError(f"the environment {venv} has no pip, and it was not made by this installer "
                           "(or holds files it did not put there), so it is left alone. Choose another "
                           "--venv, or remove that folder yourself and run the installer again.")
    if venv_mod.is_venv(venv):
        return False
    venv_mod.create_venv(venv, options.python, log, system_site_packages=options.system_site_packages)
    return True

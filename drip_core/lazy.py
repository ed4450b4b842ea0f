"""Packages whose names load their modules on first use (PEP 562), so that importing the package
costs nothing: ``__getattr__ = lazy_names(__name__, {"Name": "submodule", ...})``. A module can
do the same with its package's modules: ``lazy_names(__package__, {...}, owner=__name__)``."""
from __future__ import annotations

import importlib


def lazy_names(package: str, names: dict[str, str], owner: str | None = None):
    """A module ``__getattr__`` that imports ``package.<names[name]>`` and returns its ``name``;
    ``owner``: the module it serves, when that is not ``package`` itself (for the error)."""
    def __getattr__(name):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module '{owner or package}' has no attribute '{name}'")
        return getattr(importlib.import_module(f".{module}", package), name)
    return __getattr__

"""Engines: each maps a job region's crop (float32 image, trimap) to a Matte of that crop (base.py);
the registry says which engines exist. classical/ and drip/ are self-contained engine packages.

Names resolve lazily: the installer, on a Python without numpy, reads a DRIP model folder with
``drip_core.engines.drip.model.folder`` (standard library only), which must not pull numpy in
through this package.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "Cancelled": "base", "Engine": "base", "EngineError": "base", "Matte": "base", "Rerun": "base",
    "QUEUES": "registry", "available_engines": "registry", "get_engine": "registry",
    "intended_engine": "registry", "queue_for": "registry", "refining_engine": "registry",
    "requested_engine": "registry", "resolve_engine": "registry",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'drip_core.engines' has no attribute '{name}'")
    return getattr(importlib.import_module(f".{module}", __name__), name)

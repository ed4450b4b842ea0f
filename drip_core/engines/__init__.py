"""Engines: each maps a job region's crop (float32 image, trimap) to a Matte of that crop (base.py);
the registry says which engines exist. classical/ and drip/ are self-contained engine packages.

Names resolve lazily: the installer, on a Python without numpy, reads a DRIP model folder with
``drip_core.engines.drip.model.folder`` (standard library only), which must not pull numpy in
through this package.
"""
from __future__ import annotations

from ..lazy import lazy_names

_LAZY = {
    "Cancelled": "base", "Engine": "base", "EngineError": "base", "Matte": "base", "Rerun": "base",
    "QUEUES": "registry", "available_engines": "registry", "get_engine": "registry",
    "intended_engine": "registry", "queue_for": "registry", "refining_engine": "registry",
    "requested_engine": "registry", "resolve_engine": "registry",
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_names(__name__, _LAZY)

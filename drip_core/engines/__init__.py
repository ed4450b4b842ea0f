"""Engines: each maps a job region's crop (float32 image, trimap) to a Matte of that crop (base.py);
the registry says which engines exist. classical/ and drip/ are self-contained engine packages."""
from .base import Cancelled, Engine, EngineError, Matte, Rerun
from .registry import (
    QUEUES,
    available_engines,
    get_engine,
    intended_engine,
    queue_for,
    refining_engine,
    requested_engine,
    resolve_engine,
)

__all__ = ["QUEUES", "Cancelled", "Engine", "EngineError", "Matte", "Rerun", "available_engines",
           "get_engine", "intended_engine", "queue_for", "refining_engine", "requested_engine",
           "resolve_engine"]

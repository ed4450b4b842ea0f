"""Engines: each maps a job region's crop (float32 image, trimap) to a Matte of that crop (base.py)."""
from .base import Cancelled, Engine, EngineError, Matte
from .registry import available_engines, get_engine, resolve_engine

__all__ = ["Cancelled", "Engine", "EngineError", "Matte", "available_engines", "get_engine", "resolve_engine"]

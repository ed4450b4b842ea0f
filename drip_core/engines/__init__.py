"""Engines: every engine maps (image uint8 HxWx3, trimap uint8 HxW) to a Matte."""
from .base import Cancelled, Engine, EngineError, Matte
from .registry import available_engines, get_engine, resolve_engine

__all__ = ["Cancelled", "Engine", "EngineError", "Matte", "available_engines", "get_engine", "resolve_engine"]

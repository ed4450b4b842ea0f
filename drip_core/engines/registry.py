"""Engine lookup by name, with ``auto`` resolution and warm instances: the one place that
knows which engines exist.

``auto`` means: DRIP when a DRIP model is configured and loads, else classical
(``intended_engine`` is the one place that says so). The reason for the choice is
returned so the user can be told (see ``resolve_engine``). A job's ``auto`` first defers to
the server's own default (``requested_engine``). Each engine runs on one device queue
(``queue_for``), and the smart band's second pass mattes with ``refining_engine()``.
"""
from __future__ import annotations

import threading

from drip_protocol import ENGINES

from ..config import configured_drip_model
from .base import Engine, EngineError

# the server's device queues, and the queue each engine runs on
QUEUES = ("cpu", "accelerator")
_QUEUE_OF = {"classical": "cpu", "drip": "accelerator"}

_cache: dict[tuple, Engine] = {}
_lock = threading.Lock()


def get_engine(name: str = "auto", *, drip_model: str | None = None, device: str | None = None) -> Engine:
    """The engine called ``name`` ('auto', 'classical' or 'drip'), loaded once and kept warm."""
    return resolve_engine(name, drip_model=drip_model, device=device)[0]


def requested_engine(job_engine: str, server_default: str) -> str:
    """The engine a job asks for: its own choice, or the server's default for 'auto'."""
    return server_default if job_engine == "auto" else job_engine


def queue_for(name: str, drip_model: str | None = None) -> str:
    """The device queue (one of QUEUES) a job for engine ``name`` waits in."""
    return _QUEUE_OF[intended_engine(name, drip_model)]


def refining_engine() -> Engine:
    """The engine the smart band's second pass mattes with (drip_core.trimaps.smart_band)."""
    return get_engine("classical")


def intended_engine(name: str, drip_model: str | None = None) -> str:
    """The engine a name stands for, without loading anything: 'auto' is 'drip' when a DRIP
    model is configured, else 'classical' (``resolve_engine`` still falls back to classical
    when that model turns out unusable)."""
    if name != "auto":
        return name
    return "drip" if (drip_model or configured_drip_model()) else "classical"


def resolve_engine(name: str = "auto", *, drip_model: str | None = None,
                   device: str | None = None) -> tuple[Engine, str]:
    """(engine, note): the note says which engine runs and, for 'auto', why."""
    if name == "classical":
        return _cached(("classical",), _make_classical), "classical engine"
    if name == "drip":
        model = drip_model or configured_drip_model()
        if not model:
            raise EngineError("model_missing", "no DRIP model is configured")
        return _cached(("drip", model, device), lambda: _make_drip(model, device)), f"DRIP model {model}"
    if name == "auto":
        if intended_engine(name, drip_model) == "classical":
            return get_engine("classical"), "auto: classical engine (no DRIP model configured)"
        try:
            engine, note = resolve_engine("drip", drip_model=drip_model, device=device)
        except EngineError as exc:
            return get_engine("classical"), f"auto: classical engine (DRIP unusable: {exc.message})"
        return engine, "auto: " + note
    raise EngineError("engine_unavailable", f"unknown engine '{name}'",
                      hint=f"Choose one of: {', '.join(ENGINES)}.")


def available_engines(drip_model: str | None = None) -> list[dict]:
    """What the server advertises in its welcome message (cheap: loads nothing)."""
    model = drip_model or configured_drip_model()
    return [
        {"name": "classical", "available": True},
        {"name": "drip", "available": bool(model), "model": model},
    ]


def _cached(key, factory) -> Engine:
    with _lock:
        engine = _cache.get(key)
        if engine is None:
            engine = factory()
            _cache[key] = engine
        return engine


def _make_classical() -> Engine:
    from .classical.engine import ClassicalEngine
    return ClassicalEngine()


def _make_drip(model: str, device: str | None) -> Engine:
    try:
        from .drip.engine import DripEngine
    except ImportError as exc:
        raise EngineError("engine_unavailable",
                          f"the DRIP engine needs torch and diffusers, and {exc.name or exc} is not "
                          "installed") from None
    return DripEngine(model, device=device)

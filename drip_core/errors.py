"""The one place for drip_core's errors: the user's mistakes, the stable-code engine error,
cancellation, out-of-memory.

Every error a job can end with is a ProtocolError (drip_protocol.errors) with a stable code,
so the server, drip-matte and the plug-in all show the same message and hint.
"""
from __future__ import annotations

import sys

from drip_protocol import ProtocolError


class UserError(Exception):
    """Something the user can fix (a file, an option): printed as one line, never a traceback."""


class EngineError(ProtocolError):
    """An engine or job failure with a stable code (the same codes the wire protocol uses)."""


class Cancelled(EngineError):
    """The caller asked to stop (the client cancelled or went away)."""

    def __init__(self, message: str = "the job was cancelled"):
        super().__init__("cancelled", message)


def is_out_of_memory(exc: BaseException) -> bool:
    """Host MemoryError, torch's OutOfMemoryError (CUDA/MPS), or an allocator's 'out of memory'."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # never imported just to look at an error
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(exc, oom):
        return True
    return "out of memory" in str(exc).lower()

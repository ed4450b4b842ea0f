"""The one place for drip_core's errors: the user's mistakes, the stable-code engine error,
cancellation, out-of-memory.

Every error a job can end with is a ProtocolError (drip_protocol.errors) with a stable code,
so the server, drip-matte and the plug-in all show the same message and hint.
"""
from __future__ import annotations

import sys

from drip_protocol import ERROR_HINTS, ProtocolError
from drip_protocol.errors import user_text


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


# What to do, said to someone at the command line: the same fixes as the protocol's ERROR_HINTS,
# in drip-matte's own flags (the protocol's speak to the GIMP plug-in's user). Like those, a hint
# only says what to do: the message says what happened.
COMMAND_LINE_HINTS = {
    "model_missing": ("Give a model folder with --drip-model PATH (or import one with the installer), "
                      "or use --engine classical."),
    "model_corrupt": "Import the model again with the installer, or use --engine classical.",
    "empty_selection": ("White marks the object in a mask: give one that selects it "
                        "(or a trimap with --trimap)."),
    "no_unknown": ("Paint grey (unsure) along the object's edge in the trimap; a mask must select the "
                   "object, not the whole image."),
    "bad_trimap": ("A trimap is white (foreground), black (background) and grey (unsure), "
                   "at the photo's size."),
    "engine_unavailable": "Use --engine classical, or install the DRIP extras.",
    "out_of_memory": ("Try a smaller image or a tighter trimap, or close other programs; with DRIP, "
                      "--engine classical needs less memory."),
    "too_large": "Crop or scale the photo first (a server's limit is its --max-pixels).",
    "version_mismatch": "Restart the server from this installation.",
    "auth_failed": ("Give that server's token with --token, or point --discovery-file at its discovery "
                    "file (a restarted server has a new token)."),
    "no_server": ("Run the installer again or start `drip-server` by hand, or leave out --server to "
                  "matte in this process."),
    "bad_frame": "Restart the server; if it happens again, please report this.",
    "tls_failed": "Give the server's certificate with --tls-ca CERT, or check the host and port.",
    "engine_failed": "Please report this with the photo and the trimap.",
    "busy": "Try again in a moment.",
    "timeout": "Restart the server.",
    "connection_lost": "Run again; if it happens again, the server's log may say why.",
}
ADDRESS_HINT = ("Check the address, and that `drip-server` runs there; or leave out --server to matte "
                "in this process.")


def command_line_text(exc: BaseException, server: str = "none") -> str:
    """One line for drip-matte and its batch reports: drip_protocol.errors.user_text with
    drip-matte's words for the fix. ``server`` is drip-matte's --server (none, auto or HOST:PORT)."""
    if not isinstance(exc, ProtocolError):  # a UserError's message says what to do itself
        return user_text(getattr(exc, "code", ""), str(exc))
    return exc.user_text(hint=_command_line_hint(exc, server))


def _command_line_hint(exc: ProtocolError, server: str) -> str:
    if exc.code in ("no_server", "bad_frame") and server not in ("none", "auto"):
        return ADDRESS_HINT  # an address was given: the installer and start-up are not the cause
    if exc.hint != ERROR_HINTS.get(exc.code, ""):
        return exc.hint  # the raiser's own hint for this case (or none): it knows best
    return COMMAND_LINE_HINTS.get(exc.code, exc.hint)

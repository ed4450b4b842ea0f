"""Stable error codes, the one exception type of the Drip protocol, and the one place that
turns an error into words for a person (user_text)."""
from __future__ import annotations

import re

# Stable error codes -> what to do about it. The raiser's message says what happened; a hint
# only says what to do, so the two never state the cause twice. A raiser that knows the fix
# better gives its own hint (hint="" when its message already says what to do). drip-matte
# names its own flags instead (drip_core.errors.COMMAND_LINE_HINTS); the GIMP plug-in adds
# its local codes (plugin_logic.LOCAL_HINTS).
ERROR_HINTS = {
    "bad_frame": "Check that the host and port are a Drip server's; if they are, please report this.",
    "too_large": "Select a smaller region, or start the server with a larger --max-pixels.",
    "version_mismatch": "Rerun the installer, so that the plug-in and the server are the same version.",
    "auth_failed": ("Use the token in the server's discovery file; if that file is out of date, restart "
                    "the server."),
    "bad_request": "This is a bug in Drip Matting: please report it.",
    "bad_image": "Check the image's size and format.",
    "bad_trimap": ("A trimap must be the image's size: white for the object, black for the background, "
                   "grey where unsure."),
    "empty_selection": ("Select the object roughly first, or take the trimap from the \"Drip trimap\" "
                        "channel."),
    "no_unknown": ("Paint grey where the edge is unsure, or select only the object, not the whole image "
                   "(a feathered selection also needs a soft edge)."),
    "engine_unavailable": ("Use the classical engine, or install the DRIP extras (rerun the installer "
                           "without --engine classical)."),
    "model_missing": ("Import a DRIP model with the installer (--drip-model PATH), "
                      "or use the classical engine."),
    "model_corrupt": "Import the model again with the installer, or use the classical engine.",
    "out_of_memory": ("Select a smaller region or close other programs; with DRIP, the classical engine "
                      "needs less memory."),
    "cancelled": "",
    "engine_failed": "Please report this with the image and its trimap.",
    "image_not_cached": "The client sends its pixels again; no action is needed.",
    "busy": "Try again in a moment.",
    "no_server": "Run the installer again, or start `drip-server` by hand.",
    "tls_failed": ("Give the server's certificate (drip-matte --tls-ca CERT, or DRIP_MATTING_TLS_CA for "
                   "GIMP), or check the host and port."),
    "timeout": "Restart the server.",
    "connection_lost": "Run again; if it happens again, the server's log may say why.",
    "internal": "This is a bug in Drip Matting: please report it.",
}

# Codes whose cause the server's log can explain (a crash, a start-up failure, a bug): only these
# name the log; after the user's own mistakes (a wrong file, an empty selection) a path is noise.
LOG_HELPS = frozenset({"bad_request", "connection_lost", "engine_failed", "internal", "model_corrupt",
                       "no_server", "out_of_memory", "timeout"})


def words(text: str) -> tuple[str, ...]:
    """``text`` as its lower-case words: what two sayings of the same thing share."""
    return tuple(re.findall(r"\w+", text.lower()))


def sentences(text: str) -> list[str]:
    """``text`` cut after each full stop, question or exclamation mark that ends a sentence."""
    return [s for s in re.split(r"(?<=[.!?])\s+(?=\S)", text.strip()) if s]


def restates(sentence: str, said: list[str]) -> bool:
    """Whether ``sentence`` says again what one of ``said`` says: the same words, or one of the
    two opening with all of the other's words."""
    new = words(sentence)
    for old in map(words, said):
        shorter = min(len(new), len(old))
        if shorter and new[:shorter] == old[:shorter]:
            return True
    return False


def user_text(code: str, message: str, hint: str = "", log_file: str | None = None) -> str:
    """The one paragraph every surface shows (drip-matte, the plug-in, batch reports): what
    happened (``message``), then what to do (``hint``), each said once, then the server's log
    where it helps (LOG_HELPS). Always ends with a full stop.

    A hint that opens with the message's words is said alone, and a hint's sentence that says
    again what was already said is left out, so a hint from another version never repeats."""
    said = message.strip().rstrip(".").strip()
    hint = hint.strip()
    if said and hint and words(hint)[:len(words(said))] == words(said):
        said = ""  # the hint opens by saying what happened: once is enough
    parts = sentences(said + ".") if said else []
    for sentence in sentences(hint):
        if not restates(sentence, parts):
            parts.append(sentence)
    if log_file and code in LOG_HELPS:
        parts.append(f"Server log: {log_file}")
    text = " ".join(parts) or "unknown error"
    return text if text.endswith(".") else text + "."


class ProtocolError(Exception):
    """An error with a stable ``code`` (see ERROR_HINTS) and a human ``message``; ``hint``: what
    to do (None: the code's ERROR_HINTS; "": the message already says it)."""

    def __init__(self, code: str, message: str, *, hint: str | None = None, log_file: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint if hint is not None else ERROR_HINTS.get(code, "")
        self.log_file = log_file

    def user_text(self, hint: str | None = None, log_file: str | None = None) -> str:
        """user_text() of this error; ``hint`` replaces its own (a surface's words for the same
        fix), ``log_file`` is named when the error names none."""
        return user_text(self.code, self.message, self.hint if hint is None else hint,
                         self.log_file or log_file)

    def to_header(self, job_id: str | None = None) -> dict:
        h = {"type": "error", "code": self.code, "message": self.message, "hint": self.hint}
        if job_id is not None:
            h["id"] = job_id
        if self.log_file:
            h["log_file"] = self.log_file
        return h

    @classmethod
    def from_header(cls, header: dict) -> "ProtocolError":
        # What a server sends is not trusted to have the right types (a program squatting on a
        # stale port may say anything): non-strings fall back to the defaults.
        hint, log_file = header.get("hint"), header.get("log_file")
        return cls(str(header.get("code", "internal")), str(header.get("message", "unknown error")),
                   hint=hint if isinstance(hint, str) else None,
                   log_file=log_file if isinstance(log_file, str) else None)

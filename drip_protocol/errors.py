"""Stable error codes and the one exception type of the Drip protocol."""
from __future__ import annotations

# Stable error codes -> what the user should do about it. The server sends its own
# message (what happened); clients add this hint (what to do).
ERROR_HINTS = {
    "bad_frame": "The connection spoke something that is not the Drip protocol; check host and port.",
    "too_large": ("The image is larger than the server accepts: select a smaller region "
                  "or raise --max-pixels."),
    "version_mismatch": "Server and plug-in are from different Drip Matting versions: rerun the installer.",
    "auth_failed": "The server's token did not match: restart the server, or rerun the installer.",
    "bad_request": "The request was malformed; this is a bug, please report it with the server log.",
    "bad_image": "The image could not be used: check its size and format.",
    "bad_trimap": "The trimap could not be used: it must be the image's size, with white, grey and black.",
    "empty_selection": "Nothing is selected: select the object roughly first (or use a trimap channel).",
    "no_unknown": ("The trimap has no unknown (grey) pixels, so there is nothing to matte: widen the band "
                   "(smart band off, a larger band radius) or paint grey where the edge is unsure."),
    "engine_unavailable": "That engine cannot run here: choose 'classical', or install the DRIP extras.",
    "model_missing": ("No DRIP model is configured: import one with the installer (--drip-model PATH) "
                      "or use 'classical'."),
    "model_corrupt": "The DRIP model folder is damaged or from another version: import it again.",
    "out_of_memory": ("Out of memory: select a smaller region, close other GPU programs, "
                      "or use the classical engine."),
    "cancelled": "The job was cancelled.",
    "engine_failed": "The engine failed on this image; the server log has the details.",
    "image_not_cached": ("The server no longer holds this image; the client sends its pixels again "
                         "(no action needed)."),
    "busy": "The server's queue is full; try again in a moment.",
    "no_server": ("No Drip server is running and none could be started: run the installer again, "
                  "or start `drip-server` by hand."),
    "tls_failed": ("The server's TLS certificate could not be verified: give its certificate "
                   "(drip-matte --tls-ca CERT), or check host and port."),
    "timeout": "The server stopped answering: restart it (or look at its log).",
    "connection_lost": "The connection to the server was lost (did it crash or get stopped?).",
    "internal": "The server hit an unexpected error; the server log has the details.",
}


class ProtocolError(Exception):
    """An error with a stable ``code`` (see ERROR_HINTS) and a human ``message``."""

    def __init__(self, code: str, message: str, *, hint: str | None = None, log_file: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint if hint is not None else ERROR_HINTS.get(code, "")
        self.log_file = log_file

    def user_text(self) -> str:
        """One paragraph for a person: what happened, what to do, where the log is; a hint that
        opens by saying what happened is said alone, not after the same words."""
        said = self.message.strip().rstrip(".")
        if self.hint and said and self.hint.lower().startswith(said.lower()):
            text = self.hint
        else:
            text = said + "."
            if self.hint:
                text += " " + self.hint
        if self.log_file:
            text += f" (Server log: {self.log_file})"
        return text

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

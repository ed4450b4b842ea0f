"""The Drip Matting wire protocol: one file, Python standard library only.

The GIMP plug-in carries a copy of this very file (its installer copies it; git holds
one source), so nothing here may import numpy, torch or anything outside the stdlib.

Frame layout (all integers big-endian)::

    b"DRP1" | u32 header_len | u64 payload_len | header (UTF-8 JSON object) | payload (raw bytes)

Every header has a ``type``. Sizes are validated from the 16-byte prefix, *before*
anything is allocated for the header or the payload. See docs/protocol.md.
"""
from __future__ import annotations

import hmac
import json
import os
import socket
import ssl
import stat
import struct
import subprocess
import sys
import time

PROTOCOL_VERSION = 1
MAGIC = b"DRP1"
PREFIX = struct.Struct(">4sIQ")

MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024  # 64 megapixels: an 8K x 8K layer
HARD_MAX_DIMENSION = 65536

# Pixel formats: name -> (channels, bytes per channel). 16-bit samples are little-endian.
FORMATS = {
    "rgb8": (3, 1),
    "rgba8": (4, 1),
    "rgb16": (3, 2),
    "rgba16": (4, 2),
    "y8": (1, 1),
    "y16": (1, 2),
}
IMAGE_FORMATS = ("rgb8", "rgba8", "rgb16", "rgba16")
MASK_FORMATS = ("y8", "y16")

# How the server turns the mask it receives into a trimap.
TRIMAP_SOURCES = ("trimap", "selection_band", "feathered")
ENGINES = ("auto", "classical", "drip")

# Stable error codes -> what the user should do about it. The server sends its own
# message (what happened); clients add this hint (what to do).
ERROR_HINTS = {
    "bad_frame": "The connection spoke something that is not the Drip protocol; check host and port.",
    "too_large": "The image is larger than the server accepts: select a smaller region or raise --max-pixels.",
    "version_mismatch": "Server and plug-in are from different Drip Matting versions: rerun the installer.",
    "auth_failed": "The server's token did not match: restart the server, or rerun the installer.",
    "bad_request": "The request was malformed; this is a bug, please report it with the server log.",
    "bad_image": "The image could not be used: check its size and format.",
    "bad_trimap": "The trimap could not be used: it must be the image's size, with white, grey and black.",
    "empty_selection": "Nothing is selected: select the object roughly first (or use a trimap channel).",
    "no_unknown": "The trimap has no grey (unknown) region, so there is nothing to matte: widen the band.",
    "engine_unavailable": "That engine cannot run here: choose 'classical', or install the DRIP extras.",
    "model_missing": "No DRIP model is configured: import one with the installer (--drip-model PATH) or use 'classical'.",
    "model_corrupt": "The DRIP model folder is damaged or from another version: import it again.",
    "out_of_memory": "Out of memory: select a smaller region, close other GPU programs, or use the classical engine.",
    "cancelled": "The job was cancelled.",
    "engine_failed": "The engine failed on this image; the server log has the details.",
    "busy": "The server's queue is full; try again in a moment.",
    "no_server": "No Drip server is running and none could be started: run the installer again, or start `drip-server` by hand.",
    "tls_failed": "The server's TLS certificate could not be verified: give its certificate (drip-matte --tls-ca CERT), or check host and port.",
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
        """One paragraph for a person: what happened, what to do, where the log is."""
        text = self.message.rstrip(".") + "."
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


# ----------------------------------------------------------------------------------------
# Framing
# ----------------------------------------------------------------------------------------

def payload_length(payload) -> int:
    """Byte length of a payload given as one buffer or a list of buffers."""
    if isinstance(payload, (list, tuple)):
        return sum(memoryview(p).nbytes for p in payload)
    return memoryview(payload).nbytes


def encode_frame(header: dict, payload=b"") -> bytes:
    """Prefix + header; the payload (one buffer or a list) is sent separately, uncopied."""
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError("bad_frame", f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    return PREFIX.pack(MAGIC, len(raw), payload_length(payload)) + raw


def parse_prefix(prefix: bytes, max_payload: int) -> tuple[int, int]:
    """Validate the 16-byte prefix; returns (header_len, payload_len). Nothing allocated yet."""
    if len(prefix) != PREFIX.size:
        raise ProtocolError("bad_frame", "truncated frame prefix")
    magic, header_len, payload_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError("bad_frame", "bad magic: not a Drip Matting frame")
    if header_len == 0 or header_len > MAX_HEADER_BYTES:
        raise ProtocolError("bad_frame", f"header length {header_len} outside 1..{MAX_HEADER_BYTES}")
    if payload_len > max_payload:
        raise ProtocolError("too_large", f"payload of {payload_len} bytes exceeds the limit of {max_payload}")
    return header_len, payload_len


def decode_header(raw: bytes) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # [[[[... nests past the stack
        raise ProtocolError("bad_frame", f"header is not UTF-8 JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError("bad_frame", "header must be a JSON object with a string 'type'")
    return header


# ----------------------------------------------------------------------------------------
# Message validation (shared by server and clients)
# ----------------------------------------------------------------------------------------

def _int_field(header: dict, name: str, lo: int, hi: int) -> int:
    v = header.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ProtocolError("bad_request", f"field '{name}' must be an integer in {lo}..{hi}")
    return v


def _choice_field(header: dict, name: str, choices, default=None) -> str:
    v = header.get(name, default)
    # exact type too: 8.0 or True must not pass for 8
    if not any(type(v) is type(c) and v == c for c in choices):
        raise ProtocolError("bad_request", f"field '{name}' must be one of {', '.join(map(str, choices))}")
    return v


def buffer_size(fmt: str, width: int, height: int) -> int:
    channels, depth = FORMATS[fmt]
    return width * height * channels * depth


def validate_job(header: dict, max_pixels: int) -> dict:
    """Check a ``job`` header and return a normalised copy. Raises ProtocolError.

    The pixel count is checked here, from the header alone, before any payload is read.
    """
    job_id = header.get("id")
    if not isinstance(job_id, str) or not 0 < len(job_id) <= 128:
        raise ProtocolError("bad_request", "field 'id' must be a non-empty string of at most 128 characters")
    width = _int_field(header, "width", 0, HARD_MAX_DIMENSION)
    height = _int_field(header, "height", 0, HARD_MAX_DIMENSION)
    if width == 0 or height == 0:
        raise ProtocolError("bad_image", f"the image is empty ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise ProtocolError("too_large", f"{width}x{height} = {width * height} pixels exceeds the server's limit of {max_pixels}")
    job = {
        "id": job_id,
        "width": width,
        "height": height,
        "image_format": _choice_field(header, "image_format", IMAGE_FORMATS),
        "mask_format": _choice_field(header, "mask_format", MASK_FORMATS, "y8"),
        "trimap_source": _choice_field(header, "trimap_source", TRIMAP_SOURCES, "trimap"),
        "band_radius": _int_field({"r": header.get("band_radius", 10)}, "r", 0, 4096),
        "engine": _choice_field(header, "engine", ENGINES, "auto"),
        "result_depth": _choice_field(header, "result_depth", (8, 16), 8),
        "want_trimap": bool(header.get("want_trimap", False)),
    }
    options = header.get("options", {})
    try:
        small = isinstance(options, dict) and len(json.dumps(options)) <= 4096
    except (ValueError, RecursionError):
        small = False
    if not small:
        raise ProtocolError("bad_request", "field 'options' must be a small JSON object")
    job["options"] = options
    job["payload_len"] = (buffer_size(job["image_format"], width, height)
                          + buffer_size(job["mask_format"], width, height))
    return job


def max_job_payload(max_pixels: int) -> int:
    """Largest payload a valid job can carry (rgba16 image + y16 mask)."""
    return max_pixels * (8 + 2)


# ----------------------------------------------------------------------------------------
# Blocking client connection (used by drip_core.client and by the GIMP plug-in)
# ----------------------------------------------------------------------------------------

def recv_exactly(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        try:
            k = sock.recv_into(view[got:], min(n - got, 1 << 22))
        except socket.timeout:
            raise ProtocolError("timeout", "the server did not answer in time") from None
        except OSError as exc:
            raise ProtocolError("connection_lost", f"connection lost ({exc})") from None
        if k == 0:
            raise ProtocolError("connection_lost", "the server closed the connection")
        got += k
    return buf


def send_frame(sock: socket.socket, header: dict, payload=b"") -> None:
    try:
        sock.sendall(encode_frame(header, payload))
        for part in payload if isinstance(payload, (list, tuple)) else (payload,):
            if len(part):
                sock.sendall(part)
    except OSError as exc:
        raise ProtocolError("connection_lost", f"could not send to the server ({exc})") from None


def recv_frame(sock: socket.socket, max_payload: int) -> tuple[dict, bytearray]:
    header_len, payload_len = parse_prefix(recv_exactly(sock, PREFIX.size), max_payload)
    header = decode_header(recv_exactly(sock, header_len))
    payload = recv_exactly(sock, payload_len) if payload_len else bytearray()
    return header, payload


class Connection:
    """One authenticated connection to a Drip server (blocking sockets, no threads)."""

    def __init__(self, host: str, port: int, token: str, *, client: str = "drip-python",
                 connect_timeout: float = 3.0, idle_timeout: float = 60.0, ssl_context=None,
                 hello_timeout: float = 10.0):
        self.host, self.port = host, port
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as exc:
            raise ProtocolError("no_server", f"no Drip server answers at {host}:{port} ({exc.strerror or exc})") from None
        # The handshake has its own short deadline: a program that took over a stale port and
        # never answers must not hold the caller for the whole idle timeout.
        sock.settimeout(hello_timeout)
        if ssl_context is not None:
            try:
                sock = ssl_context.wrap_socket(sock, server_hostname=host)
            except ssl.SSLError as exc:
                sock.close()
                raise ProtocolError("tls_failed", f"TLS with {host}:{port} failed ({exc.reason or exc})") from None
            except OSError as exc:
                sock.close()
                code = "timeout" if isinstance(exc, socket.timeout) else "connection_lost"
                raise ProtocolError(code, f"TLS with {host}:{port} failed ({exc})") from None
        self.sock = sock
        try:
            send_frame(sock, {"type": "hello", "proto": PROTOCOL_VERSION, "client": client, "token": token})
            header, _ = recv_frame(sock, 0)
        except ProtocolError:
            self.close()
            raise
        if header["type"] == "error":
            self.close()
            raise ProtocolError.from_header(header)
        if header["type"] != "welcome":
            self.close()
            raise ProtocolError("bad_frame", f"expected 'welcome', got '{header['type']}'")
        sock.settimeout(idle_timeout)
        self.server_info = header
        max_pixels = header.get("max_pixels", DEFAULT_MAX_PIXELS)
        self.max_pixels = max_pixels if type(max_pixels) is int and max_pixels > 0 else DEFAULT_MAX_PIXELS
        self.log_file = header.get("log_file") if isinstance(header.get("log_file"), str) else None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, header: dict) -> dict:
        """A small request/response exchange (ping, status, shutdown)."""
        send_frame(self.sock, header)
        reply, _ = recv_frame(self.sock, 0)
        if reply["type"] == "error":
            raise ProtocolError.from_header(reply)
        return reply

    def run_job(self, job: dict, image: bytes, mask: bytes, progress=None) -> dict:
        """Send one job and wait for its result.

        ``progress(fraction, stage, message)`` is called for every heartbeat; if it returns
        True the job is cancelled. Returns {"header", "foreground", "alpha", "trimap"}: the
        result header and raw buffers (rgb8/rgb16, y8/y16, and the trimap the server built,
        y8, when the job asked for it with ``want_trimap``).
        """
        job = dict(job, type="job")
        checked = validate_job(job, self.max_pixels)
        if payload_length([image, mask]) != checked["payload_len"]:
            raise ProtocolError("bad_image", "image/mask byte counts do not match the declared size and format")
        send_frame(self.sock, job, [image, mask])
        sizes = result_sizes(checked)
        total = sum(sizes)
        while True:
            header, payload = recv_frame(self.sock, total)
            kind = header["type"]
            if kind == "progress":
                if progress is not None and progress(_number(header.get("fraction"), 0.0, 1.0),
                                                     str(header.get("stage", "")), str(header.get("message", ""))):
                    send_frame(self.sock, {"type": "cancel", "id": job["id"]})
            elif kind == "accepted":
                if progress is not None:
                    pos = int(_number(header.get("position"), 0, 1 << 30))
                    progress(0.0, "queued", f"waiting for {pos} job(s) ahead" if pos else "starting")
            elif kind == "result":
                if len(payload) != total:
                    raise ProtocolError("bad_frame", "result payload has the wrong size")
                fg_end = sizes[0]
                alpha_end = fg_end + sizes[1]
                view = memoryview(payload)  # slices without copying a large result
                return {"header": header, "foreground": view[:fg_end], "alpha": view[fg_end:alpha_end],
                        "trimap": view[alpha_end:] if checked["want_trimap"] else None}
            elif kind == "error":
                err = ProtocolError.from_header(header)
                err.log_file = err.log_file or self.log_file
                raise err
            else:
                raise ProtocolError("bad_frame", f"unexpected message '{kind}' during a job")


def _number(value, lo, hi):
    """A number from a server's message, clamped to lo..hi (lo for anything that is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return lo
    return min(max(value, lo), hi)


def result_sizes(job: dict) -> tuple[int, int, int]:
    """Byte sizes of (foreground, alpha, trimap) in a result payload for a validated job."""
    w, h = job["width"], job["height"]
    deep = job["result_depth"] == 16
    return (buffer_size("rgb16" if deep else "rgb8", w, h), buffer_size("y16" if deep else "y8", w, h),
            buffer_size("y8", w, h) if job["want_trimap"] else 0)


# ----------------------------------------------------------------------------------------
# Discovery: where a running server says how to reach it
# ----------------------------------------------------------------------------------------

APP_DIR_NAME = "drip-matting"
DISCOVERY_ENV = "DRIP_MATTING_SERVER_FILE"


def user_dir(kind: str = "state") -> str:
    """Per-user folder of this app: ``kind`` is "state" (discovery file, server log),
    "config" (settings) or "data" (virtual environment, models), by each OS's convention."""
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        env = "APPDATA" if kind == "config" else "LOCALAPPDATA"
        base = os.environ.get(env) or os.path.join(home, "AppData", "Roaming" if kind == "config" else "Local")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        env, default = {"state": ("XDG_STATE_HOME", ".local/state"), "config": ("XDG_CONFIG_HOME", ".config"),
                        "data": ("XDG_DATA_HOME", ".local/share")}[kind]
        base = os.environ.get(env) or os.path.join(home, *default.split("/"))
    return os.path.join(base, APP_DIR_NAME)


def state_dir() -> str:
    """Per-user state directory (discovery file, server log)."""
    return user_dir("state")


def default_discovery_file() -> str:
    return os.environ.get(DISCOVERY_ENV) or os.path.join(state_dir(), "server.json")


def default_log_file() -> str:
    return os.path.join(state_dir(), "server.log")


def read_discovery(path: str) -> dict | None:
    """The discovery record, or None if absent, unreadable, malformed or unsafe.

    A file that others may write is ignored: anyone who can write it could point the
    plug-in at their own server.
    """
    try:
        st = os.stat(path)
        if os.name == "posix":
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None
            if hasattr(os, "getuid") and st.st_uid != os.getuid():
                return None
        with open(path, "r", encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if not isinstance(record.get("host"), str) or not isinstance(record.get("token"), str):
        return None
    if isinstance(record.get("port"), bool) or not isinstance(record.get("port"), int):
        return None
    return record


def write_discovery(path: str, record: dict) -> None:
    """Atomically write the record with mode 0600."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if os.name != "posix":
        return True  # no cheap check; the connection attempt decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tls_client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context; ``cafile`` may be the server's own (self-signed) certificate."""
    try:
        context = ssl.create_default_context(cafile=cafile)
    except OSError as exc:
        raise ProtocolError("tls_failed", f"cannot load the TLS certificate {cafile} ({exc.strerror or exc})") from None
    if cafile and hasattr(ssl, "VERIFY_X509_PARTIAL_CHAIN"):
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # trust a leaf certificate given as the anchor
    return context


def try_connect(discovery_file: str, client: str = "drip-python", idle_timeout: float = 60.0) -> Connection | None:
    """Connect to the server the discovery file names, or None if none answers there.

    A stale file (dead pid, or a port now used by another program) gives None, not an error;
    a server that answers but rejects us (wrong token, other version) raises.
    """
    record = read_discovery(discovery_file)
    if record is None:
        return None
    if record.get("pid") is not None and record.get("host") in ("127.0.0.1", "localhost", "::1") \
            and not pid_alive(record.get("pid")):
        return None
    context = None
    if record.get("tls"):
        cert = record.get("tls_cert")
        context = tls_client_context(cert if isinstance(cert, str) else None)
    try:
        return Connection(record["host"], record["port"], record["token"], client=client, idle_timeout=idle_timeout,
                          ssl_context=context)
    except ProtocolError as exc:
        if exc.code in ("no_server", "connection_lost", "timeout", "bad_frame"):
            return None
        raise


def spawn_server(command: list, discovery_file: str, *, log_file: str | None = None, wait: float = 60.0,
                 on_wait=None, client: str = "drip-python") -> Connection:
    """Start a detached server with ``command`` and wait until it answers.

    ``on_wait(elapsed_seconds)`` is called while waiting (for a progress bar).
    """
    cmd = list(command) + ["--discovery-file", discovery_file]
    if log_file:
        cmd += ["--log-file", log_file]
    kwargs = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
              "close_fds": True}
    if os.name == "nt":
        kwargs["creationflags"] = 0x00000008 | 0x08000000  # DETACHED_PROCESS | CREATE_NO_WINDOW
    else:
        kwargs["start_new_session"] = True
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # GIMP's own PYTHONPATH must not leak into the server's venv
    env.pop("PYTHONHOME", None)
    stale = read_discovery(discovery_file)
    try:
        proc = subprocess.Popen(cmd, env=env, **kwargs)
    except OSError as exc:
        raise ProtocolError("no_server", f"could not start the server ({cmd[0]}: {exc.strerror or exc})",
                            log_file=log_file) from None
    # Exit code 0 means it lost the start-up race to another server (single instance): that
    # one may not have published its discovery file yet, so keep waiting for it.
    start = time.monotonic()
    delay = 0.05
    while time.monotonic() - start < wait:
        code = proc.poll()
        # While our server starts, the old record (a port that did not answer) is not retried:
        # a program squatting on that port could hold each attempt for the hello timeout.
        if stale is None or code is not None or read_discovery(discovery_file) != stale:
            conn = try_connect(discovery_file, client=client)
            if conn is not None:
                return conn
        if code is not None and code != 0:  # (it was just tried: another server may have won)
            raise ProtocolError("no_server", f"the server exited during start-up (exit code {code})",
                                log_file=log_file)
        if on_wait is not None:
            on_wait(time.monotonic() - start)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise ProtocolError("no_server", f"the server did not come up within {wait:.0f} s", log_file=log_file)


def check_token(expected: str, given) -> bool:
    """Constant-time token comparison."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))

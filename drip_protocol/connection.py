"""The blocking client side of a connection (used by drip_core.client and the GIMP plug-in)."""
from __future__ import annotations

import socket
import ssl

from .discovery import pid_alive, read_discovery
from .errors import ProtocolError
from .framing import PROTOCOL_VERSION, payload_length, recv_frame, send_frame
from .job import DEFAULT_MAX_PIXELS, JobSpec, check_patch, image_digest, result_sizes
from .stages import Stage


class Connection:
    """One authenticated connection to a Drip server (blocking sockets, no threads)."""

    def __init__(self, host: str, port: int, token: str, *, client: str = "drip-python",
                 connect_timeout: float = 3.0, idle_timeout: float = 60.0, ssl_context=None,
                 hello_timeout: float = 10.0):
        self.host, self.port = host, port
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as exc:
            raise ProtocolError("no_server", f"no Drip server answers at {host}:{port} "
                                             f"({exc.strerror or exc})",
                                hint="Check the address, and that `drip-server` runs there.") from None
        # The handshake has its own short deadline: a program that took over a stale port and
        # never answers must not hold the caller for the whole idle timeout.
        sock.settimeout(hello_timeout)
        if ssl_context is not None:
            try:
                sock = ssl_context.wrap_socket(sock, server_hostname=host)
            except ssl.SSLError as exc:
                sock.close()
                raise ProtocolError("tls_failed",
                                    f"TLS with {host}:{port} failed ({exc.reason or exc})") from None
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
        # The server keeps recent images (protocol 3): jobs then name theirs by digest first.
        self.server_caches_images = header.get("image_cache") is True
        self.image_sent: bool | None = None  # whether the last job had to send its pixels
        # The last result on a cached image, (digest, job kind, result id, payload): a rerun on
        # that image may then receive only the rectangle that changed (a result 'patch').
        self._held: tuple | None = None

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

    def run_job(self, job: JobSpec | dict, image: bytes, mask: bytes, progress=None, *,
                use_cache: bool = True, held_result: str | None = None) -> dict:
        """Send one job and wait for its result.

        ``progress(fraction, stage, message)`` is called for every heartbeat; if it returns
        True the job is cancelled. Returns {"header", "foreground", "alpha", "trimap"}: the
        result header and raw buffers (rgb8/rgb16, y8/y16, and the trimap the server built,
        y8, when the job asked for it with ``want_trimap``).

        When the server keeps recent images, the job first names its image by digest and sends
        only the mask; if the server no longer holds it (a new image, an evicted entry, a
        restarted server) the job is sent again with its pixels. ``image_sent`` says which.
        The connection keeps the last such result, so that a rerun on the same image receives
        only the rectangle the server re-solved.

        ``held_result``: the id of a previous result on this image that the caller keeps itself
        (a GIMP plug-in: in its layers). The server may then answer with only the rectangle it
        re-solved: the returned buffers are that rectangle's, and "patch" is [x, y, w, h] (empty
        when nothing changed); without a patch they are the whole result, as usual.
        """
        if isinstance(job, dict):  # a job header, as it goes on the wire
            job = JobSpec.from_header(job, self.max_pixels)
        job = job.replace(image_cached=False, image_digest=None, base_result=None)
        job.check_size(self.max_pixels)
        if payload_length([image, mask]) != job.payload_len:
            raise ProtocolError("bad_image",
                                "image/mask byte counts do not match the declared size and format")
        if not (use_cache and self.server_caches_images):
            self.image_sent = True
            return self._exchange(job, [image, mask], progress)
        digest = image_digest(image, job.image_format, job.width, job.height)
        kind = (job.width, job.height, job.result_depth, job.want_trimap)
        base = self._held if self._held is not None and self._held[:2] == (digest, kind) else None
        self._held = None
        if held_result is not None:
            base = None
        cached = job.replace(image_digest=digest, image_cached=True,
                             base_result=(held_result if held_result is not None
                                          else base[2] if base else None))
        try:
            self.image_sent = False
            out = self._exchange(cached, [mask], progress, base[3] if base else None,
                                 patch_alone=held_result is not None)
        except ProtocolError as exc:
            if exc.code != "image_not_cached":
                raise
            self.image_sent = True
            out = self._exchange(job, [image, mask], progress)
        result_id = out["header"].get("result_id")
        if isinstance(result_id, str) and "patch" not in out:
            self._held = (digest, kind, result_id, out["payload"])
        return out

    def _exchange(self, job: JobSpec, payload: list, progress, base=None, patch_alone=False) -> dict:
        """Send the job frame, follow its progress, return its result (or raise its error).

        ``base``: the payload of the result ``job.base_result`` names, which a patch updates;
        ``patch_alone``: the caller holds that result itself, a patch is returned as it came."""
        send_frame(self.sock, job.to_header(), payload)
        sizes = result_sizes(job)
        total = sum(sizes)
        while True:
            header, payload = recv_frame(self.sock, total)
            kind = header["type"]
            if kind == "progress":
                if progress is not None and progress(_number(header.get("fraction"), 0.0, 1.0),
                                                     str(header.get("stage", "")),
                                                     str(header.get("message", ""))):
                    send_frame(self.sock, {"type": "cancel", "id": job.id})
            elif kind == "accepted":
                if progress is not None:
                    pos = int(_number(header.get("position"), 0, 1 << 30))
                    progress(0.0, Stage.QUEUED, f"waiting for {pos} job(s) ahead" if pos else "starting")
            elif kind == "result":
                if "patch" in header and patch_alone:
                    rect = check_patch(header["patch"], job.width, job.height)
                    sizes = result_sizes(job, rect)
                    if len(payload) != sum(sizes):
                        raise ProtocolError("bad_frame", "result patch payload has the wrong size")
                    view = memoryview(payload)
                    return {"header": header, "foreground": view[:sizes[0]],
                            "alpha": view[sizes[0]:sizes[0] + sizes[1]],
                            "trimap": view[sizes[0] + sizes[1]:] if job.want_trimap else None,
                            "payload": payload, "patch": rect}
                if "patch" in header:
                    if base is None:
                        raise ProtocolError("bad_frame",
                                            "a result patch for a job that holds no previous result")
                    rect = check_patch(header["patch"], job.width, job.height)
                    payload = _apply_patch(base, payload, rect, job.width, job.height, sizes,
                                           result_sizes(job, rect))
                if len(payload) != total:
                    raise ProtocolError("bad_frame", "result payload has the wrong size")
                fg_end = sizes[0]
                alpha_end = fg_end + sizes[1]
                view = memoryview(payload)  # slices without copying a large result
                return {"header": header, "foreground": view[:fg_end], "alpha": view[fg_end:alpha_end],
                        "trimap": view[alpha_end:] if job.want_trimap else None, "payload": payload}
            elif kind == "error":
                err = ProtocolError.from_header(header)
                err.log_file = err.log_file or self.log_file
                raise err
            else:
                raise ProtocolError("bad_frame", f"unexpected message '{kind}' during a job")

def _apply_patch(base, patch: bytearray, rect, width: int, height: int, sizes, patch_sizes) -> bytearray:
    """A copy of the previous result's payload with the patch's rectangle written into each plane
    (foreground, alpha, trimap). The previous payload is not modified: the caller may still hold
    arrays that view it."""
    if len(patch) != sum(patch_sizes) or len(base) != sum(sizes):
        raise ProtocolError("bad_frame", "result patch payload has the wrong size")
    x, y, w, h = rect
    out = bytearray(base)
    dst, src = memoryview(out), memoryview(patch)
    start = src_start = 0
    for size, psize in zip(sizes, patch_sizes):
        pixel = size // (width * height)   # bytes per pixel of this plane
        row = w * pixel
        for r in range(h if row else 0):
            at = start + ((y + r) * width + x) * pixel
            dst[at:at + row] = src[src_start + r * row:src_start + (r + 1) * row]
        start += size
        src_start += psize
    return out


def _number(value, lo, hi):
    """A number from a server's message, clamped to lo..hi (lo for anything that is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return lo
    return min(max(value, lo), hi)

def tls_client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context; ``cafile`` may be the server's own (self-signed) certificate."""
    try:
        context = ssl.create_default_context(cafile=cafile)
    except OSError as exc:
        raise ProtocolError("tls_failed", f"cannot load the TLS certificate {cafile} "
                                          f"({exc.strerror or exc})") from None
    if cafile and hasattr(ssl, "VERIFY_X509_PARTIAL_CHAIN"):
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # trust a leaf certificate given as the anchor
    return context

def try_connect(discovery_file: str, client: str = "drip-python",
                idle_timeout: float = 60.0) -> Connection | None:
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
        return Connection(record["host"], record["port"], record["token"], client=client,
                          idle_timeout=idle_timeout, ssl_context=context)
    except ProtocolError as exc:
        if exc.code in ("no_server", "connection_lost", "timeout", "bad_frame"):
            return None
        raise

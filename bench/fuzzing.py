"""The fuzz generator and fuzz runs of the protocol and the server, shared by
tests/test_fuzz.py (CI-sized) and bench/stress.py (100,000 inputs; docs/reliability.md).

Seeded and deterministic: the same seed gives the same hostile inputs.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import random
import socket
import struct
import tempfile
import time
import uuid

import numpy as np

import drip_protocol as P

HOST = "127.0.0.1"

def rss_mb(pid: int | None = None) -> float:
    """Resident set size of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")




def _alive(server) -> bool:   # works for ServerProc and the tests' ServerProcess
    return server.proc.poll() is None


def _log(server) -> str:
    return server.log.read_text() if server.log.exists() else ""


def matting_case(size: int = 64, seed: int = 0):
    """A small synthetic photo + trimap the classical engine mattes in tens of milliseconds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    alpha = np.clip((size * 0.3 - r) / 4 + 0.5, 0, 1)
    fg = np.array([220, 60 + 30 * (seed % 4), 40], float)
    bg = rng.random((size, size, 3)) * 80 + 60
    image = np.clip(alpha[..., None] * fg + (1 - alpha[..., None]) * bg, 0, 255).astype(np.uint8)
    trimap = np.full((size, size), 128, np.uint8)
    trimap[r < size * 0.3 - 6] = 255
    trimap[r > size * 0.3 + 6] = 0
    return image, trimap


def expected_alpha(image, trimap):
    from drip_core.engines import get_engine
    m = get_engine("classical").matte(image, trimap)
    return np.clip(np.rint(m.alpha * 255), 0, 255).astype(np.uint8)




def parse_replies(data: bytes) -> list[dict]:
    """Split what a server sent into headers; raises if it is not a well-formed frame sequence."""
    out, pos = [], 0
    while pos < len(data):
        if len(data) - pos < P.PREFIX.size:
            raise ValueError(f"truncated reply prefix at byte {pos}")
        hl, pl = P.parse_prefix(bytes(data[pos:pos + 16]), 1 << 40)
        out.append(P.decode_header(bytes(data[pos + 16:pos + 16 + hl])))
        pos += 16 + hl + pl
        if pos > len(data):
            raise ValueError("truncated reply")
    return out


# ----------------------------------------------------------------------------------------


# Fuzz inputs: what one client sends on one connection
# ----------------------------------------------------------------------------------------

CATEGORIES = ("random_bytes", "absurd_lengths", "truncated", "bad_header", "wrong_fields", "huge_dims",
              "payload_mismatch", "out_of_order", "mutated_session")


def raw_frame(header, payload: bytes = b"", header_len: int | None = None,
              payload_len: int | None = None) -> bytes:
    raw = header if isinstance(header, (bytes, bytearray)) else \
        json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    hl = len(raw) if header_len is None else header_len
    pl = len(payload) if payload_len is None else payload_len
    return struct.pack(">4sIQ", P.MAGIC, hl & 0xFFFFFFFF, pl & 0xFFFFFFFFFFFFFFFF) + raw + payload


class FuzzInputs:
    """Seeded generator of hostile (and sometimes valid) client byte streams.

    ``one()`` returns (category, bytes, pre_auth): pre_auth is True when the stream cannot
    authenticate, so the server must end it on its own deadline even without an EOF.
    """

    JUNK_VALUES = [None, True, False, 0, -1, 1, 2**31, 2**63, 10**30, -(10**30), 1.5, float("nan"),
                   float("inf"), "", "x", "ü" * 3, "\x00", [], [1, 2], {}, {"a": {"b": []}}, "rgb8", "y16", 8,
                   16, 65536]
    FIELDS = ("id", "width", "height", "image_format", "mask_format", "trimap_source", "band_radius",
              "engine", "result_depth", "want_trimap", "options", "type", "image_digest", "image_cached")

    def __init__(self, seed: int, token: str, allow_shutdown: bool = True):
        self.rng = random.Random(seed)
        self.token = token
        self.allow_shutdown = allow_shutdown

    # -- building blocks
    def hello(self, good: bool = True) -> bytes:
        return raw_frame({"type": "hello", "proto": P.PROTOCOL_VERSION,
                          "token": self.token if good else "nope"})

    def tiny_job(self) -> tuple[dict, bytes]:
        r = self.rng
        w, h = r.randint(1, 24), r.randint(1, 24)
        fmt, mfmt = r.choice(P.IMAGE_FORMATS), r.choice(P.MASK_FORMATS)
        header = {"type": "job", "id": f"f{r.getrandbits(32):x}", "width": w, "height": h,
                  "image_format": fmt, "mask_format": mfmt, "trimap_source": r.choice(P.TRIMAP_SOURCES),
                  "engine": "classical", "band_radius": r.randint(0, 5), "want_trimap": r.random() < 0.3,
                  "result_depth": r.choice((8, 16))}
        image, mask = r.randbytes(P.buffer_size(fmt, w, h)), r.randbytes(P.buffer_size(mfmt, w, h))
        if r.random() < 0.2:   # named by digest, mask only (protocol 3): the server may or may not hold it
            digest = P.image_digest(image, fmt, w, h) if r.random() < 0.5 else r.randbytes(32).hex()
            return dict(header, image_digest=digest, image_cached=True), mask
        if r.random() < 0.2:
            header["image_digest"] = r.randbytes(32).hex()   # announced but sent: the server ignores it
        return header, image + mask

    def junk(self):
        r = self.rng
        return r.choice(self.JUNK_VALUES) if r.random() < 0.8 else r.randbytes(r.randint(0, 8)).hex()

    def lead(self) -> tuple[bytes, bool]:
        """What comes before the interesting part: usually a good hello (reach the job parser)."""
        x = self.rng.random()
        if x < 0.75:
            return self.hello(True), False
        if x < 0.85:
            return self.hello(False), True
        return b"", True

    # -- categories
    def one(self):
        r = self.rng
        cat = r.choice(CATEGORIES)
        data, pre_auth = getattr(self, "_" + cat)()
        return cat, data, pre_auth

    def _random_bytes(self):
        r = self.rng
        n = r.choice((0, 1, 4, 15, 16, 17, r.randint(0, 64), r.randint(0, 600)))
        data = r.randbytes(n)
        if r.random() < 0.3:
            data = P.MAGIC + data
        return data, True

    def _absurd_lengths(self):
        r = self.rng
        lead, pre = self.lead()
        hl = r.choice((0, 1, 2, 15, P.MAX_HEADER_BYTES, P.MAX_HEADER_BYTES + 1, 2**31, 2**32 - 1,
                       r.getrandbits(32)))
        pl = r.choice((0, 1, 2**32, 2**63, 2**64 - 1, P.max_job_payload(P.DEFAULT_MAX_PIXELS) + 1,
                       r.getrandbits(64), r.getrandbits(24)))
        tail = r.randbytes(r.randint(0, 64))
        if r.random() < 0.5:
            tail = b'{"type":"job"}' + tail
        return lead + struct.pack(">4sIQ", P.MAGIC, hl, pl) + tail, pre

    def _truncated(self):
        r = self.rng
        header, payload = self.tiny_job()
        full = self.hello(True) + raw_frame(header, payload)
        cut = r.randint(0, len(full) - 1)
        return full[:cut], cut < len(self.hello(True))

    def _bad_header(self):
        r = self.rng
        lead, pre = self.lead()
        choice = r.randrange(9)
        if choice == 0:
            raw = r.randbytes(r.randint(1, 100))
        elif choice == 1:
            raw = b'{"type":"ping","x":"' + b"\xff\xfe\xc0\x80" + b'"}'       # invalid UTF-8
        elif choice == 2:
            raw = r.choice((b"[1]", b"1", b"null", b'"job"', b"true", b"{}", b'{"type":null}',
                            b'{"type":[]}'))
        elif choice == 3:
            depth = r.choice((50, 999, 1000, 5000, 30000))
            raw = b'{"type":"job","options":' + b"[" * depth + b"]" * depth + b"}"
        elif choice == 4:
            depth = r.choice((100, 1000, 20000))
            raw = b"[" * depth
        elif choice == 5:
            raw = b'{"type":"job","width":' + b"9" * r.choice((20, 5000, 60000)) + b"}"
        elif choice == 6:
            raw = b'{"type":"ping","type":"job","width":NaN,"height":Infinity}'
        elif choice == 7:
            raw = b'{"type":"job" ' + r.randbytes(10)
        else:
            raw = json.dumps({"type": self.junk()}).encode()
        raw = raw[:P.MAX_HEADER_BYTES]
        return lead + raw_frame(raw), pre

    def _wrong_fields(self):
        r = self.rng
        if r.random() < 0.3:   # a hello with wrong/missing fields
            h = {"type": "hello", "proto": P.PROTOCOL_VERSION, "token": self.token}
            for _ in range(r.randint(1, 3)):
                key = r.choice(("type", "proto", "token", "client", "extra"))
                if r.random() < 0.3:
                    h.pop(key, None)
                else:
                    h[key] = self.junk()
            good = (h.get("type") == "hello" and h.get("token") == self.token
                    and h.get("proto") == P.PROTOCOL_VERSION)
            return raw_frame(h) + (self.tiny_frame() if good else b""), not good
        header, payload = self.tiny_job()
        for _ in range(r.randint(1, 4)):
            key = r.choice(self.FIELDS)
            if r.random() < 0.3:
                header.pop(key, None)
            else:
                header[key] = self.junk()
        return self.hello(True) + raw_frame(header, payload), False

    def tiny_frame(self) -> bytes:
        header, payload = self.tiny_job()
        return raw_frame(header, payload)

    def _huge_dims(self):
        r = self.rng
        dims = (0, 1, 8192, 8193, 40000, 65535, 65536, 65537, 2**31, 2**63, 10**100, -5)
        w, h = r.choice(dims), r.choice(dims)
        fmt = r.choice(P.IMAGE_FORMATS)
        header = {"type": "job", "id": "huge", "width": w, "height": h, "image_format": fmt,
                  "mask_format": "y16"}
        try:
            claimed = P.buffer_size(fmt, w, h) + P.buffer_size("y16", w, h)
        except Exception:  # noqa: BLE001
            claimed = 0
        claimed = r.choice((claimed, r.getrandbits(40), 0))
        # The claimed payload is never sent: the answer must come from the header alone.
        return self.hello(True) + raw_frame(header, b"", payload_len=max(claimed, 0)), False

    def _payload_mismatch(self):
        r = self.rng
        header, payload = self.tiny_job()
        real = len(payload)
        mode = r.randrange(4)
        if mode == 0:      # header says more than is sent
            frame = raw_frame(header, payload, payload_len=real + r.choice((1, 7, 1000, 2**20)))
        elif mode == 1:    # header says less than is sent (the rest is parsed as the next frame)
            frame = raw_frame(header, payload, payload_len=max(real - r.randint(1, real), 0))
        elif mode == 2:    # the job's fields disagree with a self-consistent frame
            header["width"] = header["width"] + r.choice((-1, 1))
            frame = raw_frame(header, payload)
        else:              # a payload on a message that carries none
            frame = raw_frame({"type": r.choice(("ping", "status", "cancel")), "id": "x"},
                              r.randbytes(r.randint(1, 50)))
        return self.hello(True) + frame, False

    def _out_of_order(self):
        r = self.rng
        kinds = ["hello", "hello_bad", "job", "cancel", "cancel_other", "ping", "status", "welcome", "result",
                 "error", "accepted", "progress", "bye", "unknown"]
        if self.allow_shutdown:
            kinds.append("shutdown")
        frames = []
        last_id = "none"
        for _ in range(r.randint(1, 6)):
            k = r.choice(kinds)
            if k == "hello":
                frames.append(self.hello(True))
            elif k == "hello_bad":
                frames.append(self.hello(False))
            elif k == "job":
                header, payload = self.tiny_job()
                last_id = header["id"]
                frames.append(raw_frame(header, payload))
            elif k == "cancel":
                frames.append(raw_frame({"type": "cancel", "id": last_id}))
            elif k == "cancel_other":
                frames.append(raw_frame({"type": "cancel", "id": self.junk()}))
            elif k == "unknown":
                frames.append(raw_frame({"type": r.randbytes(4).hex()}))
            else:
                frames.append(raw_frame({"type": k, "id": last_id, "code": "internal"}))
        pre_auth = not (frames and frames[0] == self.hello(True))
        return b"".join(frames), pre_auth

    def _mutated_session(self):
        r = self.rng
        header, payload = self.tiny_job()
        data = bytearray(self.hello(True) + raw_frame(header, payload) + raw_frame({"type": "ping"}))
        for _ in range(r.randint(1, 8)):
            op = r.randrange(3)
            pos = r.randrange(len(data))
            if op == 0:
                data[pos] ^= 1 << r.randrange(8)
            elif op == 1:
                data[pos:pos] = r.randbytes(r.randint(1, 8))
            else:
                del data[pos:pos + r.randint(1, 8)]
        good = bytes(data[:len(self.hello(True))]) == self.hello(True)
        return bytes(data), not good


# ----------------------------------------------------------------------------------------
# Fuzzing: the parser directly, the server in-process, a real server process
# ----------------------------------------------------------------------------------------

def parse_stream(data: bytes, max_pixels: int = P.DEFAULT_MAX_PIXELS) -> list:
    """What the server's reader does to a byte stream, without a server: returns outcomes."""
    outcomes, pos = [], 0
    max_payload = P.max_job_payload(max_pixels)
    while pos < len(data):
        try:
            if len(data) - pos < P.PREFIX.size:
                raise P.ProtocolError("connection_lost", "truncated")
            hl, pl = P.parse_prefix(data[pos:pos + 16], max_payload)
            assert 1 <= hl <= P.MAX_HEADER_BYTES and pl <= max_payload
            header = P.decode_header(data[pos + 16:pos + 16 + hl])
            assert isinstance(header, dict) and isinstance(header["type"], str)
            if header["type"] == "job":
                job = P.JobSpec.from_header(header, max_pixels)
                assert 0 < job.width * job.height <= max_pixels
                image_len = job.image_len
                assert job.payload_len == image_len + P.buffer_size(job.mask_format, job.width, job.height)
            outcomes.append("ok")
            pos += 16 + hl + pl
        except P.ProtocolError as exc:
            assert exc.code in P.ERROR_HINTS, exc.code
            outcomes.append(exc.code)
            break
    return outcomes


def fuzz_parser(n: int, seed: int = 0) -> dict:
    """Frame parser + header decoder + job validator on ``n`` generated streams."""
    gen = FuzzInputs(seed, "parser-token")
    codes, crashes, samples = collections.Counter(), 0, []
    start = time.perf_counter()
    for _ in range(n):
        cat, data, _ = gen.one()
        try:
            for o in parse_stream(data):
                codes[o] += 1
        except Exception as exc:  # noqa: BLE001 - that is what we count
            crashes += 1
            if len(samples) < 5:
                samples.append(f"{cat}: {exc.__class__.__name__}: {exc} input={data[:80]!r}")
    return {"inputs": n, "crashes": crashes, "crash_samples": samples, "outcomes": dict(codes),
            "seconds": round(time.perf_counter() - start, 2)}


class FakeWriter:
    """Collects what the server writes to one connection."""

    def __init__(self):
        self.buf = bytearray()
        self.closed = False

    def write(self, data):
        if not self.closed:
            self.buf += data

    async def drain(self):
        if self.closed:
            raise ConnectionResetError("closed")

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def get_extra_info(self, name, default=None):
        return default


class _ErrorLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage()[:300])


def run_valid_job(discovery: str, size: int = 64, seed: int = 1) -> dict:
    """One real job through a real socket; checks the alpha against the in-process engine."""
    from drip_core.client import connect
    image, trimap = matting_case(size, seed)
    with connect(discovery, spawn=False) as c:
        _, alpha = c.matte(image, trimap, engine="classical")
    diff = int(np.abs(alpha.astype(int) - expected_alpha(image, trimap)).max())
    return {"ok": diff <= 1, "max_alpha_diff": diff}


def fuzz_server_inprocess(n: int, seed: int = 0, folder: str | None = None, hang_check_every: int = 20,
                          time_limit: float = 3600.0) -> dict:
    """Drive DripServer._handle with ``n`` generated streams (no sockets: fast).

    Each stream ends in EOF and must be handled within 10 s. Every ``hang_check_every``-th
    stream that cannot authenticate is also sent *without* an EOF (HELLO_TIMEOUT shortened to
    0.2 s): the server must end it on its own deadline. Afterwards a valid job must complete
    through a real socket, and the process's memory must not have grown much.
    """
    from drip_core.server import session
    from drip_core.server.app import DripServer, ServerOptions

    folder = folder or tempfile.mkdtemp(prefix="drip-fuzz-")
    token = "fuzz-" + uuid.uuid4().hex
    stats = {"inputs": 0, "no_eof_inputs": 0, "hangs": 0, "crashes": 0, "internal_errors": 0,
             "bad_replies": 0, "leaked_connections": 0, "categories": collections.Counter(),
             "reply_codes": collections.Counter(), "samples": [], "rss_samples_mb": []}

    def note(kind, cat, data, detail=""):
        stats[kind] += 1
        if len(stats["samples"]) < 8:
            stats["samples"].append(f"{kind} [{cat}] {detail} input={bytes(data[:100])!r}")

    async def handle(server, data, eof=True, timeout=10.0):
        reader = asyncio.StreamReader(limit=1 << 16)
        reader.feed_data(data)
        if eof:
            reader.feed_eof()
        writer = FakeWriter()
        await asyncio.wait_for(server._handle(reader, writer), timeout)
        return writer.buf

    def check_replies(cat, data, buf):
        try:
            replies = parse_replies(buf)
        except Exception as exc:  # noqa: BLE001
            note("bad_replies", cat, data, f"{exc}")
            return
        for r in replies:
            if r["type"] == "error":
                stats["reply_codes"][r.get("code")] += 1
                if r.get("code") == "internal" or r.get("code") not in P.ERROR_HINTS:
                    note("internal_errors", cat, data, r.get("message", ""))
            else:
                stats["reply_codes"][r["type"]] += 1

    async def main():
        opts = ServerOptions(host=HOST, discovery_file=os.path.join(folder, "fuzz.json"), log_file=None,
                             engine="classical", token=token)
        server = DripServer(opts)
        assert await server.start()
        errors = _ErrorLog()
        logging.getLogger("drip.server").addHandler(errors)
        gen = FuzzInputs(seed, token)
        rss_before = rss_mb()
        start = time.perf_counter()
        no_eof = []

        async def run_no_eof(batch):
            saved = session.HELLO_TIMEOUT
            session.HELLO_TIMEOUT = 0.2
            try:
                results = await asyncio.gather(*(handle(server, d, eof=False, timeout=5.0) for _, d in batch),
                                               return_exceptions=True)
            finally:
                session.HELLO_TIMEOUT = saved
            for (cat, d), res in zip(batch, results):
                stats["no_eof_inputs"] += 1
                if isinstance(res, asyncio.TimeoutError):
                    note("hangs", cat, d, "no EOF: not ended by the server's deadline")
                elif isinstance(res, BaseException):
                    note("crashes", cat, d, f"{res.__class__.__name__}: {res}")
                else:
                    check_replies(cat, d, res)

        rss_peak = rss_before
        for i in range(n):
            if time.perf_counter() - start > time_limit:
                break
            cat, data, pre_auth = gen.one()
            stats["inputs"] += 1
            stats["categories"][cat] += 1
            try:
                buf = await handle(server, data)
            except asyncio.TimeoutError:
                note("hangs", cat, data, "with EOF")
                continue
            except Exception as exc:  # noqa: BLE001
                note("crashes", cat, data, f"{exc.__class__.__name__}: {exc}")
                continue
            check_replies(cat, data, buf)
            if server.connections != 0:
                note("leaked_connections", cat, data, f"connections={server.connections}")
                server.connections = 0
            if pre_auth and hang_check_every and i % hang_check_every == 0:
                no_eof.append((cat, data))
                if len(no_eof) >= 200:
                    await run_no_eof(no_eof)
                    no_eof = []
            if i % 1000 == 0:
                rss_peak = max(rss_peak, rss_mb())
            if (i + 1) % max(n // 10, 1) == 0:
                stats["rss_samples_mb"].append((i + 1, round(rss_mb(), 1)))
        if no_eof:
            await run_no_eof(no_eof)
        # let the queues drain: fuzzed jobs were cancelled by their EOF
        deadline = time.monotonic() + 60
        while any(w.position() for w in server.workers.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - start
        loop = asyncio.get_running_loop()
        after = await loop.run_in_executor(None, run_valid_job, opts.discovery_file)
        rss_after = rss_mb()
        stats["crashes"] += len([m for m in errors.messages if "crashed" in m])
        stats["logged_errors"] = errors.messages[:5]
        logging.getLogger("drip.server").removeHandler(errors)
        await server.close()
        stats.update(seconds=round(seconds, 2), rate_per_s=round(stats["inputs"] / max(seconds, 1e-9)),
                     rss_before_mb=round(rss_before, 1), rss_peak_mb=round(max(rss_peak, rss_after), 1),
                     rss_after_mb=round(rss_after, 1), valid_job_after=after)

    asyncio.run(main())
    stats["categories"] = dict(stats["categories"])
    stats["reply_codes"] = dict(stats["reply_codes"])
    return stats


def send_stream(address, data: bytes, timeout: float = 15.0) -> tuple[bytes, float]:
    """Send one stream, half-close, read until the server closes. Returns (reply, seconds)."""
    start = time.monotonic()
    sock = socket.create_connection(address, timeout=timeout)
    try:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close first (it answered an early error)
        chunks = []
        while time.monotonic() - start < timeout:
            try:
                chunk = sock.recv(1 << 16)
            except socket.timeout:
                raise TimeoutError("server neither answered nor closed") from None
            except OSError:
                break  # reset: the server closed with our bytes unread
            if not chunk:
                break
            chunks.append(chunk)
        else:
            raise TimeoutError("server neither answered nor closed")
        return b"".join(chunks), time.monotonic() - start
    finally:
        sock.close()


def fuzz_server_process(server, n: int, seed: int = 0, time_limit: float = 1800.0) -> dict:
    """The same streams over real sockets to a real server process (no shutdown frames)."""
    gen = FuzzInputs(seed, server.record["token"], allow_shutdown=False)
    stats = {"inputs": 0, "hangs": 0, "bad_replies": 0, "internal_errors": 0, "server_died": False,
             "reply_codes": collections.Counter(), "samples": [], "max_seconds_per_input": 0.0}
    run_valid_job(str(server.discovery))  # warm the engine before the baseline
    rss_before = rss_mb(server.proc.pid)
    rss_peak = rss_before
    start = time.perf_counter()
    for i in range(n):
        if time.perf_counter() - start > time_limit:
            break
        cat, data, _ = gen.one()
        stats["inputs"] += 1
        try:
            reply, secs = send_stream(server.address, data)
            stats["max_seconds_per_input"] = max(stats["max_seconds_per_input"], round(secs, 3))
        except TimeoutError:
            stats["hangs"] += 1
            stats["samples"].append(f"hang [{cat}] {data[:100]!r}")
            continue
        except OSError as exc:
            if not _alive(server):
                stats["server_died"] = True
                stats["samples"].append(f"server died after [{cat}] {data[:100]!r}")
                break
            stats["samples"].append(f"connect failed [{cat}]: {exc}")
            continue
        try:
            replies = parse_replies(reply)
        except Exception as exc:  # noqa: BLE001
            stats["bad_replies"] += 1
            stats["samples"].append(f"bad reply [{cat}] {exc}")
            continue
        for r in replies:
            code = r.get("code") if r["type"] == "error" else r["type"]
            stats["reply_codes"][code] += 1
            if code == "internal":
                stats["internal_errors"] += 1
                stats["samples"].append(f"internal [{cat}] {data[:100]!r}")
        if i % 200 == 0:
            rss_peak = max(rss_peak, rss_mb(server.proc.pid))
    seconds = time.perf_counter() - start
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # fuzzed jobs were cancelled by the half-close; let the queue drain
        from drip_core.client import connect
        with connect(str(server.discovery), spawn=False) as c:
            if not any(c.connection.request({"type": "status"})["queues"].values()):
                break
        time.sleep(0.1)
    stats["server_died"] = stats["server_died"] or not _alive(server)
    stats["valid_job_after"] = run_valid_job(str(server.discovery)) if _alive(server) else {"ok": False}
    stats.update(seconds=round(seconds, 2), rss_before_mb=round(rss_before, 1),
                 rss_peak_mb=round(max(rss_peak, rss_mb(server.proc.pid)), 1),
                 rss_after_mb=round(rss_mb(server.proc.pid), 1),
                 crashed_in_log=_log(server).count("connection handler crashed"))
    stats["reply_codes"] = dict(stats["reply_codes"])
    stats["samples"] = stats["samples"][:8]
    return stats


# ----------------------------------------------------------------------------------------

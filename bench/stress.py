"""Reliability stress runs (issue 7): fuzzing, load, soak and faults against the Drip server.

    .venv/bin/python bench/stress.py fuzz   --inputs 100000 --process-inputs 20000
    .venv/bin/python bench/stress.py load   --clients 16 --jobs 20
    .venv/bin/python bench/stress.py soak   --jobs 500
    .venv/bin/python bench/stress.py faults
    .venv/bin/python bench/stress.py all    --json results.json     # everything above

The test suite (tests/test_fuzz.py, tests/test_reliability.py) runs the same functions with
small counts. All traffic is on 127.0.0.1; every loop is bounded in count and in time.
Figures go to docs/reliability.md.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import drip_protocol as P  # noqa: E402

HOST = "127.0.0.1"


# ----------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------

def rss_mb(pid: int | None = None) -> float:
    """Resident set size of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def percentile(values, q):
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else float("nan")


class ServerProc:
    """A real `python -m drip_core.server` on loopback (like the tests' ServerProcess)."""

    def __init__(self, folder: Path, *args: str, env: dict | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.discovery = folder / "server.json"
        self.log = folder / "server.log"
        cmd = [sys.executable, "-m", "drip_core.server", "--discovery-file", str(self.discovery),
               "--log-file", str(self.log), *args]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not self.discovery.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        self.record = json.loads(self.discovery.read_text())

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self):
        return self.record["host"], self.record["port"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


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


def slow_case(size: int = 900):
    """A job that keeps the classical engine busy for seconds (a wide unknown band on noise)."""
    rng = np.random.default_rng(0)
    image = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    trimap = np.zeros((size, size), np.uint8)
    a, b = size // 9, size - size // 9
    trimap[a:b, a:b] = 128
    trimap[size // 3:2 * size // 3, size // 3:2 * size // 3] = 255
    return image, trimap


def job_header(w, h, image_format="rgb8", mask_format="y8", **extra):
    return {"type": "job", "id": uuid.uuid4().hex, "width": w, "height": h, "image_format": image_format,
            "mask_format": mask_format, **extra}


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


def raw_frame(header, payload: bytes = b"", header_len: int | None = None, payload_len: int | None = None) -> bytes:
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

    JUNK_VALUES = [None, True, False, 0, -1, 1, 2**31, 2**63, 10**30, -(10**30), 1.5, float("nan"), float("inf"),
                   "", "x", "ü" * 3, "\x00", [], [1, 2], {}, {"a": {"b": []}}, "rgb8", "y16", 8, 16, 65536]
    FIELDS = ("id", "width", "height", "image_format", "mask_format", "trimap_source", "band_radius", "engine",
              "result_depth", "want_trimap", "options", "type")

    def __init__(self, seed: int, token: str, allow_shutdown: bool = True):
        self.rng = random.Random(seed)
        self.token = token
        self.allow_shutdown = allow_shutdown

    # -- building blocks
    def hello(self, good: bool = True) -> bytes:
        return raw_frame({"type": "hello", "proto": P.PROTOCOL_VERSION, "token": self.token if good else "nope"})

    def tiny_job(self) -> tuple[dict, bytes]:
        r = self.rng
        w, h = r.randint(1, 24), r.randint(1, 24)
        fmt, mfmt = r.choice(P.IMAGE_FORMATS), r.choice(P.MASK_FORMATS)
        header = {"type": "job", "id": f"f{r.getrandbits(32):x}", "width": w, "height": h, "image_format": fmt,
                  "mask_format": mfmt, "trimap_source": r.choice(P.TRIMAP_SOURCES), "engine": "classical",
                  "band_radius": r.randint(0, 5), "want_trimap": r.random() < 0.3,
                  "result_depth": r.choice((8, 16))}
        payload = r.randbytes(P.buffer_size(fmt, w, h) + P.buffer_size(mfmt, w, h))
        return header, payload

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
        hl = r.choice((0, 1, 2, 15, P.MAX_HEADER_BYTES, P.MAX_HEADER_BYTES + 1, 2**31, 2**32 - 1, r.getrandbits(32)))
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
            raw = r.choice((b"[1]", b"1", b"null", b'"job"', b"true", b"{}", b'{"type":null}', b'{"type":[]}'))
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
            good = h.get("type") == "hello" and h.get("token") == self.token and h.get("proto") == P.PROTOCOL_VERSION
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
        header = {"type": "job", "id": "huge", "width": w, "height": h, "image_format": fmt, "mask_format": "y16"}
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
            frame = raw_frame({"type": r.choice(("ping", "status", "cancel")), "id": "x"}, r.randbytes(r.randint(1, 50)))
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
                job = P.validate_job(header, max_pixels)
                assert 0 < job["width"] * job["height"] <= max_pixels
                assert job["payload_len"] == P.buffer_size(job["image_format"], job["width"], job["height"]) + \
                    P.buffer_size(job["mask_format"], job["width"], job["height"])
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
    from drip_core.server import app
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
            saved = app.HELLO_TIMEOUT
            app.HELLO_TIMEOUT = 0.2
            try:
                results = await asyncio.gather(*(handle(server, d, eof=False, timeout=5.0) for _, d in batch),
                                               return_exceptions=True)
            finally:
                app.HELLO_TIMEOUT = saved
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


def fuzz_server_process(server: ServerProc, n: int, seed: int = 0, time_limit: float = 1800.0) -> dict:
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
# Load: many concurrent clients, and a long sequential soak
# ----------------------------------------------------------------------------------------

def run_load(server: ServerProc, clients: int, jobs: int, size: int = 64, time_limit: float = 900.0) -> dict:
    """``clients`` concurrent connections x ``jobs`` jobs each; checks results, FIFO and heartbeats."""
    from drip_core.client import connect
    cases = [matting_case(size, seed) for seed in range(4)]
    expected = [expected_alpha(*c) for c in cases]
    results = collections.defaultdict(list)
    failures = []
    barrier = threading.Barrier(clients)
    deadline = time.monotonic() + time_limit

    def client(c):
        try:
            conn = connect(str(server.discovery), spawn=False)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"client {c}: connect: {exc}")
            return
        with conn:
            barrier.wait(60)
            for j in range(jobs):
                if time.monotonic() > deadline:
                    failures.append(f"client {c}: time limit")
                    return
                k = (c + j) % len(cases)
                image, trimap = cases[k]
                stamps = [time.monotonic()]
                try:
                    _, alpha, info = conn.matte(image, trimap, engine="classical", return_info=True,
                                                progress=lambda *a: stamps.append(time.monotonic()))
                except Exception as exc:  # noqa: BLE001
                    failures.append(f"client {c} job {j}: {exc.__class__.__name__}: {exc}")
                    continue
                stamps.append(time.monotonic())
                diff = int(np.abs(alpha.astype(int) - expected[k].astype(int)).max())
                results[c].append({"id": info["id"], "diff": diff, "latency": stamps[-1] - stamps[0],
                                   "max_gap": float(np.max(np.diff(stamps))), "engine_s": info["engine_seconds"]})

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(deadline - time.monotonic(), 1))
    wall = time.perf_counter() - start
    done = [r for rs in results.values() for r in rs]
    # FIFO: the cpu queue finished jobs in the order it accepted them (server log).
    log = _log(server)
    ours = {r["id"] for r in done}
    accepted = [m.group(1) for m in re.finditer(r"job (\w+) accepted: .* queue cpu ", log) if m.group(1) in ours]
    finished = [m.group(1) for m in re.finditer(r"job (\w+) (?:done|cancelled|failed)", log) if m.group(1) in ours]
    latencies = [r["latency"] for r in done]
    return {
        "clients": clients, "jobs_per_client": jobs, "jobs_submitted": clients * jobs, "jobs_completed": len(done),
        "jobs_lost": clients * jobs - len(done), "wrong_results": sum(r["diff"] > 1 for r in done),
        "max_alpha_diff": max((r["diff"] for r in done), default=None), "failures": failures[:8],
        "fifo_ok": accepted == finished and len(accepted) == len(done), "distinct_ids": len(ours),
        "max_heartbeat_gap_s": round(max((r["max_gap"] for r in done), default=0.0), 3),
        "latency_p50_s": round(percentile(latencies, 50), 3), "latency_p95_s": round(percentile(latencies, 95), 3),
        "latency_max_s": round(max(latencies, default=0.0), 3),
        "engine_s_mean": round(float(np.mean([r["engine_s"] for r in done])) if done else 0.0, 4),
        "wall_s": round(wall, 2), "jobs_per_s": round(len(done) / wall, 2), "image": f"{size}x{size}",
        "server_alive": _alive(server),
    }


def run_soak(server: ServerProc, jobs: int, size: int = 64, sample_every: int = 50, warmup: int = 50,
             reconnect_every: int = 10, time_limit: float = 1800.0) -> dict:
    """``jobs`` sequential jobs (a new connection every ``reconnect_every``); RSS sampled as it goes."""
    from drip_core.client import connect
    cases = [matting_case(size, seed) for seed in range(4)]
    expected = [expected_alpha(*c) for c in cases]
    samples, wrong, errors = [], 0, []
    conn = None
    start = time.perf_counter()
    rss_start = rss_mb(server.proc.pid)
    for i in range(jobs):
        if time.perf_counter() - start > time_limit:
            errors.append("time limit")
            break
        if conn is None or i % reconnect_every == 0:
            if conn is not None:
                conn.close()
            conn = connect(str(server.discovery), spawn=False)
        image, trimap = cases[i % 4]
        try:
            _, alpha = conn.matte(image, trimap, engine="classical")
            wrong += int(np.abs(alpha.astype(int) - expected[i % 4].astype(int)).max() > 1)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"job {i}: {exc}")
        if (i + 1) % sample_every == 0 or i + 1 == min(warmup, jobs):
            samples.append((i + 1, round(rss_mb(server.proc.pid), 1)))
    if conn is not None:
        conn.close()
    wall = time.perf_counter() - start
    after_warm = [mb for k, mb in samples if k >= min(warmup, jobs)]
    return {"jobs": jobs, "completed": jobs - len(errors), "wrong_results": wrong, "errors": errors[:5],
            "rss_start_mb": round(rss_start, 1), "rss_samples": samples,
            "rss_after_warmup_mb": after_warm[0] if after_warm else None,
            "rss_end_mb": samples[-1][1] if samples else None,
            "rss_growth_after_warmup_mb": round(after_warm[-1] - after_warm[0], 1) if after_warm else None,
            "wall_s": round(wall, 2), "jobs_per_s": round(jobs / wall, 2), "server_alive": _alive(server)}


# ----------------------------------------------------------------------------------------
# Faults
# ----------------------------------------------------------------------------------------

def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# progress stages before the engine itself works on a job
WAITING_STAGES = ("queued", "preparing", "loading model", "starting", "None")

CLIENT_SCRIPT = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import drip_protocol as P
from bench.stress import slow_case
image, trimap = slow_case(int(sys.argv[3]))
with P.Connection("127.0.0.1", int(sys.argv[2]), sys.argv[4]) as c:
    h, w = trimap.shape
    job = {"type": "job", "id": sys.argv[5], "width": w, "height": h, "image_format": "rgb8", "mask_format": "y8",
           "engine": "classical"}
    P.send_frame(c.sock, job, [image.tobytes(), trimap.tobytes()])
    print("sent", flush=True)
    while True:
        header, _ = P.recv_frame(c.sock, 1 << 30)
        print(header["type"], header.get("stage"), flush=True)
"""


def fault_client_killed(server: ServerProc, size: int = 900) -> dict:
    """A client process is SIGKILLed while its big job runs: the job is cancelled, memory comes back."""
    run_valid_job(str(server.discovery))
    time.sleep(0.3)
    baseline = rss_mb(server.proc.pid)
    job_id = "killed-" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, str(REPO), str(server.address[1]), str(size),
                             server.record["token"], job_id], stdout=subprocess.PIPE, text=True)
    try:
        # wait until the engine is really working on it (the progress stage 'alpha' arrives)
        running = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            parts = line.split(maxsplit=1)
            if parts[0] == "progress" and parts[1].strip() not in WAITING_STAGES:
                running = True
                break
        time.sleep(0.5)
        peak = rss_mb(server.proc.pid)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    cancelled = wait_for(lambda: f"job {job_id} cancelled" in _log(server), 30)
    cancel_s = time.monotonic() - killed_at
    after = wait_for(lambda: rss_mb(server.proc.pid) < baseline + 30 and rss_mb(server.proc.pid), 15) or rss_mb(server.proc.pid)
    ok_after = run_valid_job(str(server.discovery))
    return {"ok": bool(running and cancelled and after < baseline + 30 and ok_after["ok"] and _alive(server)),
            "engine_was_running": running, "cancelled_in_log": bool(cancelled), "cancel_seconds": round(cancel_s, 2),
            "rss_baseline_mb": round(baseline, 1), "rss_peak_mb": round(peak, 1), "rss_after_mb": round(after, 1),
            "done_in_log": f"job {job_id} done" in _log(server), "valid_job_after": ok_after["ok"]}


def fault_server_killed(server: ServerProc, size: int = 900) -> dict:
    """The server is SIGKILLed mid-job: the Python client raises connection_lost promptly."""
    from drip_core.client import connect
    image, trimap = slow_case(size)
    outcome = {}
    stages = []

    def job():
        try:
            with connect(str(server.discovery), spawn=False) as c:
                c.matte(image, trimap, engine="classical", progress=lambda f, s, m: stages.append(s))
            outcome["result"] = "completed (unexpected)"
        except P.ProtocolError as exc:
            outcome["code"] = exc.code
            outcome["text"] = exc.user_text()
        except Exception as exc:  # noqa: BLE001
            outcome["crash"] = f"{exc.__class__.__name__}: {exc}"
        outcome["at"] = time.monotonic()

    t = threading.Thread(target=job, daemon=True)
    t.start()
    wait_for(lambda: any(s not in WAITING_STAGES for s in stages), 60)
    killed_at = time.monotonic()
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    t.join(30)
    return {"ok": outcome.get("code") == "connection_lost", "code": outcome.get("code"),
            "crash": outcome.get("crash"), "report_seconds": round(outcome.get("at", killed_at) - killed_at, 2),
            "message": outcome.get("text", "")[:160]}


def fault_engine(server: ServerProc) -> dict:
    """Injected engine failures (needs DRIP_MATTING_TEST_FAULTS=1): stable codes, the server stays up."""
    from drip_core.client import connect
    image, trimap = matting_case(64, 2)
    h, w = trimap.shape
    expected = {"engine_error": "engine_failed", "oom": "out_of_memory", "cuda_oom": "out_of_memory"}
    got = {}
    run_valid_job(str(server.discovery))
    baseline = rss_mb(server.proc.pid)
    rss_after = {}
    for fault in expected:
        with connect(str(server.discovery), spawn=False) as c:
            job = {"id": uuid.uuid4().hex, "width": w, "height": h, "image_format": "rgb8", "mask_format": "y8",
                   "engine": "classical", "options": {"fault": fault}}
            try:
                c.connection.run_job(job, image.tobytes(), trimap.tobytes())
                got[fault] = "result"
            except P.ProtocolError as exc:
                got[fault] = exc.code
            # the same connection keeps working after the failure
            after = c.matte(image, trimap, engine="classical")[1]
        rss_after[fault] = round(rss_mb(server.proc.pid), 1)
    still = run_valid_job(str(server.discovery))
    return {"ok": got == expected and still["ok"] and _alive(server) and after is not None
            and max(rss_after.values()) < baseline + 30,
            "codes": got, "rss_baseline_mb": round(baseline, 1), "rss_after_mb": rss_after,
            "valid_job_after": still["ok"], "server_alive": _alive(server)}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _free_port() -> int:
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fault_stale_discovery(folder: Path, kind: str) -> dict:
    """A stale discovery file -> connect(spawn=True) notices and starts a fresh server.

    kind: 'dead_pid' (the recorded server is gone), 'port_reused' (another program answers
    on the port with HTTP, our live pid), 'port_silent' (it accepts and never answers).
    """
    from drip_core.client import connect
    folder.mkdir(parents=True, exist_ok=True)
    discovery = folder / "server.json"
    listener = None
    stop = threading.Event()
    if kind == "dead_pid":
        P.write_discovery(str(discovery), {"host": HOST, "port": _free_port(), "token": "stale", "pid": _dead_pid()})
    else:
        listener = socket.socket()
        listener.bind((HOST, 0))
        listener.listen()
        listener.settimeout(0.2)
        held = []

        def other_program():
            while not stop.is_set():
                try:
                    c, _ = listener.accept()
                except OSError:
                    continue
                if kind == "port_reused":
                    try:
                        c.settimeout(2)
                        c.recv(100)
                        c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                    except OSError:
                        pass
                    c.close()
                else:
                    held.append(c)  # never answers

        threading.Thread(target=other_program, daemon=True).start()
        P.write_discovery(str(discovery), {"host": HOST, "port": listener.getsockname()[1], "token": "stale",
                                           "pid": os.getpid()})
    start = time.monotonic()
    client = None
    try:
        client = connect(str(discovery), spawn=True, log_file=str(folder / "server.log"),
                         server_args=["--idle-timeout", "60"], wait=60)
        seconds = time.monotonic() - start
        record = P.read_discovery(str(discovery))
        image, trimap = matting_case(48, 3)
        _, alpha = client.matte(image, trimap, engine="classical")
        ok = record is not None and record["pid"] == client.server_info["pid"] and alpha.shape == trimap.shape
        return {"ok": ok, "kind": kind, "seconds_to_fresh_server": round(seconds, 2),
                "new_server_pid": client.server_info["pid"]}
    except P.ProtocolError as exc:
        return {"ok": False, "kind": kind, "error": f"{exc.code}: {exc.message}"}
    finally:
        stop.set()
        if client is not None:
            try:
                client.shutdown()
            except P.ProtocolError:
                pass
            client.close()
        if listener is not None:
            listener.close()


SPAWN_SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
from drip_core.client import connect
c = connect(sys.argv[2], spawn=True, log_file=sys.argv[3], server_args=["--idle-timeout", "60"], wait=60)
print(c.server_info["pid"], c.connection.request({"type": "ping"})["type"], flush=True)
c.close()
"""


def fault_concurrent_spawn(folder: Path, n: int = 3) -> dict:
    """``n`` clients start at once with no server running: all connect, to one single server."""
    from drip_core.client import connect
    folder.mkdir(parents=True, exist_ok=True)
    discovery = folder / "server.json"
    procs = [subprocess.Popen([sys.executable, "-c", SPAWN_SCRIPT, str(REPO), str(discovery), str(folder / "server.log")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        outs.append((p.returncode, out.strip(), err.strip()[-300:]))
    pids = {o[1].split()[0] for o in outs if o[0] == 0 and o[1].endswith("pong")}
    alive = []
    for pid in pids:
        alive.append(P.pid_alive(int(pid)))
    # exactly one server answers on this discovery file; shut it down
    try:
        with connect(str(discovery), spawn=False) as c:
            server_pid = c.server_info["pid"]
            c.shutdown()
    except P.ProtocolError:
        server_pid = None
    ok = all(o[0] == 0 for o in outs) and len(pids) == 1 and str(server_pid) in pids
    return {"ok": ok, "clients": n, "distinct_server_pids": len(pids),
            "client_errors": [o[2] for o in outs if o[0] != 0][:3]}


def run_faults(folder: Path, slow: bool = True) -> dict:
    out = {}
    s = ServerProc(folder / "killed-client")
    try:
        out["client_killed_mid_job"] = fault_client_killed(s)
    finally:
        s.stop()
    s = ServerProc(folder / "killed-server")
    try:
        out["server_killed_mid_job"] = fault_server_killed(s)
    finally:
        s.stop()
    s = ServerProc(folder / "engine-faults", env={"DRIP_MATTING_TEST_FAULTS": "1"})
    try:
        out["engine_faults"] = fault_engine(s)
    finally:
        s.stop()
    for kind in ("dead_pid", "port_reused") + (("port_silent",) if slow else ()):
        out[f"stale_{kind}"] = fault_stale_discovery(folder / f"stale-{kind}", kind)
    out["concurrent_spawn"] = fault_concurrent_spawn(folder / "spawn", 4)
    return out


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("fuzz", "load", "soak", "faults", "all"))
    ap.add_argument("--inputs", type=int, default=100_000, help="in-process fuzz inputs (and parser inputs)")
    ap.add_argument("--process-inputs", type=int, default=20000, help="fuzz inputs sent to a real server process")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=20, help="jobs per client (load)")
    ap.add_argument("--size", type=int, default=192, help="load jobs are SIZE x SIZE (192: a job waits > 1 s behind 15 others)")
    ap.add_argument("--soak-jobs", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("drip.server").setLevel(logging.ERROR)  # the fuzz makes many warnings
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "cpus": os.cpu_count()}
    failed = False
    with tempfile.TemporaryDirectory(prefix="drip-stress-") as tmp:
        tmp = Path(tmp)
        if args.what in ("fuzz", "all"):
            report["fuzz_parser"] = r = fuzz_parser(args.inputs, args.seed)
            print("parser:", json.dumps(r), flush=True)
            failed |= r["crashes"] > 0
            report["fuzz_inprocess"] = r = fuzz_server_inprocess(args.inputs, args.seed, str(tmp))
            print("in-process server:", json.dumps(r), flush=True)
            failed |= bool(r["crashes"] or r["hangs"] or r["internal_errors"] or r["bad_replies"]
                           or not r["valid_job_after"]["ok"])
            s = ServerProc(tmp / "fuzz-proc")
            try:
                report["fuzz_process"] = r = fuzz_server_process(s, args.process_inputs, args.seed + 1)
            finally:
                s.stop()
            print("server process:", json.dumps(r), flush=True)
            failed |= bool(r["hangs"] or r["internal_errors"] or r["server_died"] or not r["valid_job_after"]["ok"])
        if args.what in ("load", "all"):
            s = ServerProc(tmp / "load")
            try:
                report["load"] = r = run_load(s, args.clients, args.jobs, size=args.size)
            finally:
                s.stop()
            print("load:", json.dumps(r), flush=True)
            failed |= bool(r["jobs_lost"] or r["wrong_results"] or not r["fifo_ok"] or r["max_heartbeat_gap_s"] > 2.0)
        if args.what in ("soak", "all"):
            s = ServerProc(tmp / "soak")
            try:
                report["soak"] = r = run_soak(s, args.soak_jobs)
            finally:
                s.stop()
            print("soak:", json.dumps(r), flush=True)
            failed |= bool(r["errors"] or r["wrong_results"])
        if args.what in ("faults", "all"):
            report["faults"] = r = run_faults(tmp / "faults")
            for name, res in r.items():
                print(f"fault {name}:", json.dumps(res), flush=True)
                failed |= not res["ok"]
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print("FAILED" if failed else "ALL OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

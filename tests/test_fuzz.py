"""Fuzzing the frame parser and the server (the CI-sized version of `bench/stress.py fuzz`).

Hypothesis drives the parser functions directly; bench/fuzzing.py's seeded generator of hostile
streams (random bytes, absurd lengths, truncated frames, invalid UTF-8/JSON, wrong types and
missing fields, huge dimensions, payload sizes that disagree with the header, messages out of
order, mutated sessions) drives the server in-process and a real server process. The long
runs (100,000 inputs) are `bench/stress.py fuzz`; figures in docs/reliability.md.
"""
from __future__ import annotations

import json
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import drip_protocol as P
from bench import fuzzing

try:  # keep Hypothesis's caches out of the work tree
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir
    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="drip-hypothesis-"))
except ImportError:
    pass

# database=None: no .hypothesis/ folder in the work tree; failures print their example.
FAST = settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12)
# cheap wrong values for single fields
junk = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=True) | st.text(max_size=6) | st.just([]) | st.just({"a": 1}))


# ----------------------------------------------------------------------------------------
# The parser, directly
# ----------------------------------------------------------------------------------------

@FAST
@given(st.binary(min_size=0, max_size=24), st.integers(min_value=0, max_value=2**64))
def test_parse_prefix_only_raises_protocol_errors_and_enforces_limits(raw, max_payload):
    try:
        hl, pl = P.parse_prefix(raw, max_payload)
    except P.ProtocolError as exc:
        assert exc.code in ("bad_frame", "too_large")
        return
    assert len(raw) == 16 and raw[:4] == P.MAGIC
    assert 1 <= hl <= P.MAX_HEADER_BYTES and 0 <= pl <= max_payload


@FAST
@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=0, max_value=2**64 - 1))
def test_absurd_lengths_are_refused_from_the_prefix_alone(hl, pl):
    limit = P.max_job_payload(P.DEFAULT_MAX_PIXELS)
    prefix = struct.pack(">4sIQ", P.MAGIC, hl, pl)
    if 1 <= hl <= P.MAX_HEADER_BYTES and pl <= limit:
        assert P.parse_prefix(prefix, limit) == (hl, pl)
    else:
        with pytest.raises(P.ProtocolError):
            P.parse_prefix(prefix, limit)


@FAST
@given(st.binary(max_size=300))
def test_decode_header_on_random_bytes(raw):
    try:
        header = P.decode_header(raw)
    except P.ProtocolError as exc:
        assert exc.code == "bad_frame"
        return
    assert isinstance(header, dict) and isinstance(header["type"], str)


@settings(max_examples=500, deadline=None, database=None)
@given(json_values)
def test_decode_header_on_any_json(value):
    raw = json.dumps(value).encode()
    try:
        header = P.decode_header(raw)
    except P.ProtocolError as exc:
        assert exc.code == "bad_frame"
        assert not (isinstance(value, dict) and isinstance(value.get("type"), str))
        return
    assert header["type"] == value["type"]


@pytest.mark.parametrize("raw", [b"[" * 100_000,
                                 b'{"type":"job","options":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                                 b'{"type":"a","x":' + b'{"a":' * 30_000 + b"1" + b"}" * 30_001])
def test_deeply_nested_json_is_a_bad_frame_not_a_recursion_error(raw):
    with pytest.raises(P.ProtocolError) as err:
        P.decode_header(raw[:P.MAX_HEADER_BYTES])
    assert err.value.code == "bad_frame"


job_fields = st.fixed_dictionaries(
    {"type": st.just("job")},
    optional={"id": st.text(max_size=140) | junk,
              "width": st.integers(min_value=-3, max_value=70000) | junk,
              "height": st.integers(min_value=-3, max_value=70000) | junk,
              "image_format": st.sampled_from(P.IMAGE_FORMATS + ("y8", "cmyk")) | junk,
              "mask_format": st.sampled_from(P.MASK_FORMATS + ("rgb8",)) | junk,
              "trimap_source": st.sampled_from(P.TRIMAP_SOURCES) | junk,
              "band_radius": st.integers(min_value=-5, max_value=5000) | junk,
              "engine": st.sampled_from(P.ENGINES) | junk,
              "result_depth": st.sampled_from((8, 16, 8.0, 16.0, True, 12)) | junk,
              "want_trimap": junk, "options": junk | json_values,
              "image_digest": st.text(alphabet="0123456789abcdefABCDEF", min_size=60, max_size=66) | junk,
              "image_cached": st.booleans() | junk,
              "base_result": st.text(alphabet="0123456789abcdef", max_size=70) | junk})


@settings(max_examples=1500, deadline=None, database=None)
@given(job_fields, st.sampled_from((1, 100, 10_000, P.DEFAULT_MAX_PIXELS)))
def test_validate_job_never_crashes_and_never_exceeds_the_pixel_limit(header, max_pixels):
    try:
        job = P.JobSpec.from_header(header, max_pixels)
    except P.ProtocolError as exc:
        assert exc.code in ("bad_request", "bad_image", "too_large")
        return
    w, h = job.width, job.height
    assert type(w) is int and type(h) is int and 0 < w * h <= max_pixels
    assert job.image_format in P.IMAGE_FORMATS and job.mask_format in P.MASK_FORMATS
    assert job.result_depth in (8, 16) and type(job.result_depth) is int
    assert job.payload_len <= P.max_job_payload(max_pixels)
    assert isinstance(job.id, str) and 0 < len(job.id) <= 128
    mask_len = P.buffer_size(job.mask_format, w, h)
    if job.image_cached:   # only the mask travels, and the image is named by a well-formed digest
        assert job.payload_len == mask_len and len(job.image_digest) == P.DIGEST_CHARS
    else:
        assert job.payload_len == mask_len + P.buffer_size(job.image_format, w, h)


@settings(max_examples=300, deadline=None, database=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6), st.text(max_size=20))
def test_encode_decode_round_trip(extra, kind):
    header = {**extra, "type": kind}
    frame = P.encode_frame(header)
    hl, pl = P.parse_prefix(frame[:16], 0)
    assert pl == 0 and hl == len(frame) - 16
    got = P.decode_header(frame[16:])
    assert json.dumps(got, sort_keys=True) == json.dumps(header, sort_keys=True)


def test_generated_streams_through_the_parser():
    r = fuzzing.fuzz_parser(5000, seed=11)
    assert r["crashes"] == 0, r["crash_samples"]
    assert {"ok", "bad_frame", "bad_request", "too_large"} <= set(r["outcomes"])


# ----------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------

def test_inprocess_server_survives_generated_streams(tmp_path):
    r = fuzzing.fuzz_server_inprocess(2500, seed=5, folder=str(tmp_path), time_limit=120)
    assert r["inputs"] == 2500
    for key in ("crashes", "hangs", "internal_errors", "bad_replies", "leaked_connections"):
        assert r[key] == 0, (key, r["samples"])
    assert r["no_eof_inputs"] > 0
    assert set(r["categories"]) == set(fuzzing.CATEGORIES)
    # the fuzz reached the job path, not only the front door
    assert r["reply_codes"].get("accepted", 0) > 0 and r["reply_codes"].get("welcome", 0) > 1000
    assert r["valid_job_after"]["ok"]
    assert r["rss_after_mb"] - r["rss_before_mb"] < 100


def test_real_server_process_survives_generated_streams(server):
    r = fuzzing.fuzz_server_process(server, 300, seed=9, time_limit=120)
    assert r["inputs"] == 300 and not r["server_died"]
    assert r["hangs"] == 0 and r["internal_errors"] == 0 and r["bad_replies"] == 0, r["samples"]
    assert r["crashed_in_log"] == 0
    assert r["valid_job_after"]["ok"]
    assert r["rss_peak_mb"] - r["rss_before_mb"] < 100


def test_stalled_unauthenticated_connections_are_dropped_and_others_served(server):
    """Slowloris: partial frames that never complete are closed on the hello deadline."""
    partials = [b"", b"DR", P.MAGIC + b"\x00\x00", P.MAGIC + struct.pack(">IQ", 100, 0) + b'{"type":"hel',
                P.MAGIC + struct.pack(">IQ", 40, 0)]
    socks = []
    for i in range(20):
        s = socket.create_connection(server.address, timeout=30)
        s.sendall(partials[i % len(partials)])
        socks.append(s)
    start = time.monotonic()
    # Meanwhile the owner's job goes through.
    assert fuzzing.run_valid_job(str(server.discovery))["ok"]
    closed = 0
    for s in socks:
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        closed += 1
        replies = fuzzing.parse_replies(data)
        assert [r.get("code") for r in replies] in (["timeout"], [])
        s.close()
    assert closed == 20 and time.monotonic() - start < 25


def test_huge_dimensions_refused_before_allocation_by_the_real_server(server):
    """A 65536 x 65536 rgbf32 job (~60 GB claimed): refused from the header, server RSS flat."""
    fuzzing.run_valid_job(str(server.discovery))
    before = fuzzing.rss_mb(server.proc.pid)
    for w, h, fmt in [(65536, 65536, "rgbf32"), (8193, 8193, "rgb8"), (65537, 1, "rgb8"), (0, 0, "rgb8")]:
        sock = socket.create_connection(server.address, timeout=10)
        P.send_frame(sock, {"type": "hello", "proto": P.PROTOCOL_VERSION, "token": server.record["token"]})
        assert P.recv_frame(sock, 0)[0]["type"] == "welcome"
        header = {"type": "job", "id": "huge", "width": w, "height": h, "image_format": fmt,
                  "mask_format": "y16"}
        raw = json.dumps(header).encode()
        claimed = P.buffer_size(fmt, w, h) + P.buffer_size("y16", w, h)
        sock.sendall(P.PREFIX.pack(P.MAGIC, len(raw), claimed) + raw)   # and no payload at all
        reply, _ = P.recv_frame(sock, 0)
        expected = ({"too_large"} if w * h > P.DEFAULT_MAX_PIXELS
                    else {"bad_request", "bad_image", "too_large"})
        assert reply["type"] == "error" and reply["code"] in expected, reply
        sock.close()
    assert fuzzing.rss_mb(server.proc.pid) - before < 20
    assert fuzzing.run_valid_job(str(server.discovery))["ok"]


# ----------------------------------------------------------------------------------------
# The client against a hostile or broken server (a program squatting on a stale port)
# ----------------------------------------------------------------------------------------

server_headers = st.fixed_dictionaries(
    {"type": st.sampled_from(["progress", "accepted", "error", "result", "welcome", "pong", "weird"])},
    optional={**{k: junk for k in ("fraction", "stage", "message", "position", "code", "hint", "log_file",
                                   "id", "max_pixels", "result_id")},
              "patch": junk | st.lists(st.integers(min_value=-1, max_value=6), min_size=3, max_size=5)})
server_streams = st.lists(st.one_of(server_headers.map(fuzzing.raw_frame), st.binary(max_size=40),
                                    st.tuples(server_headers, st.binary(max_size=200)).map(
                                        lambda t: fuzzing.raw_frame(t[0], t[1]))), max_size=5).map(b"".join)


def connection_on(sock, caches_images=False):
    conn = P.Connection.__new__(P.Connection)   # skip the handshake: the socket is already "connected"
    conn.sock, conn.host, conn.port = sock, "test", 0
    conn.max_pixels, conn.log_file = P.DEFAULT_MAX_PIXELS, None
    conn.server_caches_images, conn.image_sent = caches_images, None
    # it holds a previous result of the fuzzed job's image, so 'patch' results are applied to it
    conn._held = (P.image_digest(bytes(48), "rgb8", 4, 4), (4, 4, 8, False), "ab", bytearray(range(64)))
    return conn


# a server with an image cache may first answer that it lacks the image: the client then
# sends the job again with its pixels, and must survive whatever follows
not_cached = fuzzing.raw_frame({"type": "error", "code": "image_not_cached", "message": "gone", "id": "j"})


@settings(max_examples=400, deadline=None, database=None)
@given(server_streams, st.sampled_from(("no cache", "cache", "cache, miss first")))
def test_client_run_job_survives_any_server_reply(stream, cache):
    if cache == "cache, miss first":
        stream = not_cached + stream
    a, b = socket.socketpair()
    a.settimeout(5)
    try:
        b.sendall(stream)
        b.shutdown(socket.SHUT_WR)
        job = {"id": "j", "width": 4, "height": 4, "image_format": "rgb8", "mask_format": "y8"}
        try:
            out = connection_on(a, cache != "no cache").run_job(job, bytes(48), bytes(16),
                                                                progress=lambda *args: None)
        except P.ProtocolError as exc:
            exc.user_text()    # must be printable too
        else:
            assert len(out["alpha"]) == 16
    finally:
        a.close()
        b.close()


@settings(max_examples=150, deadline=None, database=None)
@given(server_streams)
def test_client_handshake_survives_any_server_reply(stream):
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def hostile():
        c, _ = listener.accept()
        try:
            c.sendall(stream)
        except OSError:
            pass
        c.close()

    t = threading.Thread(target=hostile, daemon=True)
    t.start()
    try:
        try:
            conn = P.Connection("127.0.0.1", listener.getsockname()[1], "token", hello_timeout=5)
        except P.ProtocolError as exc:
            exc.user_text()
        else:
            assert type(conn.max_pixels) is int and conn.max_pixels > 0
            conn.close()
    finally:
        t.join(5)
        listener.close()


# ----------------------------------------------------------------------------------------
# Trimap building and buffer decoding on arbitrary masks and buffers
# ----------------------------------------------------------------------------------------

import numpy as np  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

masks = hnp.arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.bool_, np.int32]),
                   shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=12))


@settings(max_examples=300, deadline=None, database=None)
@given(masks, st.sampled_from(P.TRIMAP_SOURCES + ("lasso",)), st.integers(min_value=-2, max_value=40))
def test_trimap_build_gives_a_trimap_or_a_clear_error(mask, source, radius):
    from drip_core import trimaps as T
    try:
        t = T.build(source, mask, radius)
    except P.ProtocolError as exc:
        assert exc.code in ("bad_trimap", "empty_selection", "bad_request")
        return
    assert t.dtype == np.uint8 and t.ndim == 2 and t.size > 0
    assert set(np.unique(t)) <= {0, 128, 255}


@settings(max_examples=400, deadline=None, database=None)
@given(st.binary(max_size=200), st.sampled_from(sorted(P.FORMATS)), st.integers(0, 9), st.integers(0, 9))
def test_buffer_decoding_checks_sizes(data, fmt, w, h):
    from drip_core.buffers import to_array
    try:
        arr = to_array(data, fmt, w, h)
    except P.ProtocolError as exc:
        assert exc.code == "bad_image" and len(data) != P.buffer_size(fmt, w, h)
        return
    assert len(data) == P.buffer_size(fmt, w, h) and arr.shape[:2] == (h, w)


def test_absurd_claims_allocate_nothing_big(tmp_path):
    """tracemalloc around the server's handler: claims of gigabytes cost kilobytes."""
    import asyncio
    import tracemalloc

    from drip_core.server.app import DripServer, ServerOptions

    server = DripServer(ServerOptions(discovery_file=str(tmp_path / "s.json"), token="tok"))
    hello = fuzzing.raw_frame({"type": "hello", "proto": P.PROTOCOL_VERSION, "token": "tok"})
    huge_job = {"type": "job", "id": "h", "width": 65536, "height": 65536, "image_format": "rgbf32",
                "mask_format": "y16"}
    streams = [
        struct.pack(">4sIQ", P.MAGIC, 2**32 - 1, 0),                        # header of 4 GB
        struct.pack(">4sIQ", P.MAGIC, 10, 2**64 - 1) + b'{"type":1}',       # payload of 16 EB before hello
        hello + struct.pack(">4sIQ", P.MAGIC, 10, 2**63) + b'{"type":1}',   # ... and after
        hello + fuzzing.raw_frame(huge_job, b"", payload_len=65536 * 65536 * 10),   # 40 GB job
        hello + fuzzing.raw_frame(dict(huge_job, width=8193, height=8193), b"", payload_len=8193 * 8193 * 10),
    ]

    async def run(data):
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        writer = fuzzing.FakeWriter()
        await asyncio.wait_for(server._handle(reader, writer), 10)
        return fuzzing.parse_replies(writer.buf)

    for data in streams:
        tracemalloc.start()
        try:
            replies = asyncio.run(run(data))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert replies[-1]["type"] == "error" and replies[-1]["code"] in ("bad_frame", "too_large"), replies
        assert peak < 1 << 20, (peak, data[:40])

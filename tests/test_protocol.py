"""The wire protocol: round trips, limits checked before allocation, malformed frames."""
from __future__ import annotations

import json
import os
import socket
import struct
import threading

import pytest

import drip_protocol as P


def socket_pair():
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    return a, b


def test_frame_round_trip_with_payload():
    a, b = socket_pair()
    payload = bytes(range(256)) * 1000
    sender = threading.Thread(target=P.send_frame,
                              args=(a, {"type": "job", "id": "x", "ü": "ünïcode"}, payload))
    sender.start()
    header, got = P.recv_frame(b, len(payload))
    assert header == {"type": "job", "id": "x", "ü": "ünïcode"}
    assert got == payload
    sender.join()


def test_prefix_layout_is_magic_u32_u64_big_endian():
    frame = P.encode_frame({"type": "ping"}, b"abc")
    magic, hlen, plen = struct.unpack(">4sIQ", frame[:16])
    assert magic == b"DRP1" and plen == 3 and hlen == len(frame) - 16
    assert json.loads(frame[16:]) == {"type": "ping"}


@pytest.mark.parametrize("prefix, code", [
    (b"XXXX" + struct.pack(">IQ", 10, 0), "bad_frame"),                 # wrong magic
    (P.MAGIC + struct.pack(">IQ", 0, 0), "bad_frame"),                  # empty header
    (P.MAGIC + struct.pack(">IQ", P.MAX_HEADER_BYTES + 1, 0), "bad_frame"),
    (P.MAGIC + struct.pack(">IQ", 10, 2**63), "too_large"),             # absurd payload
])
def test_bad_prefixes_rejected_before_allocating(prefix, code):
    with pytest.raises(P.ProtocolError) as err:
        P.parse_prefix(prefix, max_payload=1000)
    assert err.value.code == code


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"not json", b"[1,2]", b'{"no_type": 1}', b'{"type": 5}'])
def test_bad_headers(raw):
    with pytest.raises(P.ProtocolError) as err:
        P.decode_header(raw)
    assert err.value.code == "bad_frame"


def test_truncated_frame_is_connection_lost():
    a, b = socket_pair()
    a.sendall(P.encode_frame({"type": "ping"}, b"12345")[:-3])
    a.close()
    with pytest.raises(P.ProtocolError) as err:
        P.recv_frame(b, 100)
    assert err.value.code == "connection_lost"


def job(**kw):
    base = {"type": "job", "id": "j1", "width": 10, "height": 5, "image_format": "rgb8"}
    base.update(kw)
    return base


def test_validate_job_computes_payload_size():
    j = P.JobSpec.from_header(job(mask_format="y16", image_format="rgb16"), P.DEFAULT_MAX_PIXELS)
    assert j.payload_len == 10 * 5 * 6 + 10 * 5 * 2
    assert j.engine == "auto" and j.trimap_source == "trimap" and j.result_depth == 8
    j = P.JobSpec.from_header(job(image_format="rgbf32", result_depth=32), P.DEFAULT_MAX_PIXELS)
    assert j.payload_len == 10 * 5 * 12 + 10 * 5 and P.result_sizes(j) == (10 * 5 * 12, 10 * 5 * 4, 0)


@pytest.mark.parametrize("fields, code", [
    ({"width": 0}, "bad_image"),
    ({"width": -1}, "bad_request"),
    ({"width": "10"}, "bad_request"),
    ({"width": True}, "bad_request"),
    ({"width": 70000}, "bad_request"),
    ({"width": 60000, "height": 60000}, "too_large"),
    ({"image_format": "cmyk"}, "bad_request"),
    ({"engine": "magic"}, "bad_request"),
    ({"trimap_source": "lasso"}, "bad_request"),
    ({"id": ""}, "bad_request"),
    ({"id": 5}, "bad_request"),
    ({"band_radius": -3}, "bad_request"),
    ({"options": [1]}, "bad_request"),
])
def test_validate_job_rejects(fields, code):
    with pytest.raises(P.ProtocolError) as err:
        P.JobSpec.from_header(job(**fields), P.DEFAULT_MAX_PIXELS)
    assert err.value.code == code


def test_token_compare():
    assert P.check_token("abc", "abc")
    assert not P.check_token("abc", "abd")
    assert not P.check_token("abc", None)
    assert not P.check_token("abc", 123)


def test_discovery_file_is_private_and_unsafe_files_are_ignored(tmp_path):
    path = str(tmp_path / "state" / "server.json")
    P.write_discovery(path, {"host": "127.0.0.1", "port": 1234, "token": "t", "pid": os.getpid()})
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert P.read_discovery(path)["port"] == 1234
    os.chmod(path, 0o666)
    assert P.read_discovery(path) is None  # writable by others: could point us anywhere
    os.chmod(path, 0o600)
    with open(path, "w") as f:
        f.write("{broken")
    assert P.read_discovery(path) is None
    assert P.read_discovery(str(tmp_path / "missing.json")) is None


def test_stale_discovery_file_gives_no_connection(tmp_path):
    path = str(tmp_path / "server.json")
    # A port nobody listens on (bind then close), and our own live pid.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    P.write_discovery(path, {"host": "127.0.0.1", "port": port, "token": "t", "pid": os.getpid()})
    assert P.try_connect(path) is None
    # A dead pid.
    P.write_discovery(path, {"host": "127.0.0.1", "port": port, "token": "t", "pid": 2**22 + 12345})
    assert P.try_connect(path) is None


def test_stale_discovery_with_port_reused_by_another_program(tmp_path):
    """The port now belongs to something that does not speak our protocol."""
    path = str(tmp_path / "server.json")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def other_program():
        c, _ = srv.accept()
        c.recv(100)
        c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        c.close()

    t = threading.Thread(target=other_program, daemon=True)
    t.start()
    P.write_discovery(path, {"host": "127.0.0.1", "port": srv.getsockname()[1], "token": "t",
                             "pid": os.getpid()})
    assert P.try_connect(path) is None
    srv.close()


def test_protocol_package_is_stdlib_only():
    """The GIMP plug-in imports this package; GIMP's Python has no numpy."""
    import ast
    import sys
    from pathlib import Path
    names = set()
    modules = list(Path(P.__file__).parent.glob("*.py"))
    for node in (n for m in modules for n in ast.walk(ast.parse(m.read_text(encoding="utf-8")))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    assert len(modules) >= 6
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)


def test_user_text_has_hint_and_log():
    e = P.ProtocolError("out_of_memory", "CUDA ran out of memory", log_file="/x/server.log")
    text = e.user_text()
    assert "smaller region" in text and "/x/server.log" in text

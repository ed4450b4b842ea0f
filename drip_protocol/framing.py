"""Framing: every message is a 16-byte prefix, a JSON header and raw payload bytes.

    b"DRP1" | u32 header_len | u64 payload_len | header (UTF-8 JSON object) | payload

All integers are big-endian. Sizes are validated from the prefix, *before* anything is
allocated for the header or the payload.
"""
from __future__ import annotations

import hmac
import json
import socket
import struct

from .errors import ProtocolError

# Version 2: RGB-only images (the layer's alpha stays in GIMP) and float32 pixels.
# Version 3: jobs may name their image by digest and leave its pixels out (the image cache).
PROTOCOL_VERSION = 4  # 4: edge controls and previews (edges.py)
MAGIC = b"DRP1"

PREFIX = struct.Struct(">4sIQ")

MAX_HEADER_BYTES = 64 * 1024


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

def check_token(expected: str, given) -> bool:
    """Constant-time token comparison."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))

"""The Drip Matting wire protocol: Python standard library only, one concept per module.

Both ends import this package by name: drip_core (server, Python client, drip-matte) and
the GIMP plug-in, which the installer ships with this very package beside it (GIMP's
Python has no numpy, so nothing here may import anything outside the stdlib).

    errors      stable error codes, hints, ProtocolError
    framing     prefix + JSON header + raw payload; the protocol version; token check
    edges       the edge controls applied after matting, and the preview's backgrounds
    job         pixel formats, limits, choices, the typed job (JobSpec), result sizes
    stages      the progress stages a server reports (Stage)
    connection  the blocking client connection (handshake, run_job), TLS context
    discovery   the discovery file and the per-user folders
    spawn       starting a detached local server

See docs/protocol.md.
"""
from .connection import Connection, tls_client_context, try_connect
from .discovery import (
    APP_DIR_NAME,
    DISCOVERY_ENV,
    default_discovery_file,
    default_log_file,
    pid_alive,
    read_discovery,
    server_log_file,
    state_dir,
    user_dir,
    write_discovery,
)
from .edges import PREVIEW_BACKGROUNDS, EdgeSettings
from .errors import ERROR_HINTS, ProtocolError
from .framing import (
    MAGIC,
    MAX_HEADER_BYTES,
    PREFIX,
    PROTOCOL_VERSION,
    check_token,
    decode_header,
    encode_frame,
    parse_prefix,
    payload_length,
    recv_exactly,
    recv_frame,
    send_frame,
)
from .job import (
    AUTO_BAND,
    AUTO_BAND_REACH,
    DEFAULT_BAND_RADIUS,
    DEFAULT_MAX_PIXELS,
    DIGEST_CHARS,
    ENGINES,
    FIXED_BAND_RADIUS,
    FORMATS,
    HARD_MAX_DIMENSION,
    IMAGE_FORMATS,
    MASK_FORMATS,
    MAX_BAND_RADIUS,
    RESULT_DEPTHS,
    TRIMAP_BACKGROUND,
    TRIMAP_FOREGROUND,
    TRIMAP_SOURCES,
    TRIMAP_UNKNOWN,
    JobSpec,
    band_reach,
    buffer_size,
    check_patch,
    image_digest,
    max_job_payload,
    result_sizes,
)
from .spawn import spawn_server
from .stages import Stage

__all__ = [
    "APP_DIR_NAME",
    "AUTO_BAND",
    "AUTO_BAND_REACH",
    "DEFAULT_BAND_RADIUS",
    "DEFAULT_MAX_PIXELS",
    "DIGEST_CHARS",
    "EdgeSettings",
    "DISCOVERY_ENV",
    "ENGINES",
    "ERROR_HINTS",
    "FIXED_BAND_RADIUS",
    "FORMATS",
    "HARD_MAX_DIMENSION",
    "IMAGE_FORMATS",
    "MAGIC",
    "MASK_FORMATS",
    "MAX_BAND_RADIUS",
    "MAX_HEADER_BYTES",
    "PREFIX",
    "PREVIEW_BACKGROUNDS",
    "PROTOCOL_VERSION",
    "RESULT_DEPTHS",
    "TRIMAP_BACKGROUND",
    "TRIMAP_FOREGROUND",
    "TRIMAP_SOURCES",
    "TRIMAP_UNKNOWN",
    "band_reach",
    "buffer_size",
    "check_patch",
    "check_token",
    "Connection",
    "decode_header",
    "default_discovery_file",
    "default_log_file",
    "encode_frame",
    "image_digest",
    "JobSpec",
    "max_job_payload",
    "parse_prefix",
    "payload_length",
    "pid_alive",
    "ProtocolError",
    "read_discovery",
    "server_log_file",
    "recv_exactly",
    "recv_frame",
    "result_sizes",
    "send_frame",
    "spawn_server",
    "Stage",
    "state_dir",
    "tls_client_context",
    "try_connect",
    "user_dir",
    "write_discovery",
]

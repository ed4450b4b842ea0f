"""The Drip Matting wire protocol: Python standard library only, one concept per module.

Both ends import this package by name: drip_core (server, Python client, drip-matte) and
the GIMP plug-in, which the installer ships with this very package beside it (GIMP's
Python has no numpy, so nothing here may import anything outside the stdlib).

    errors      stable error codes, hints, ProtocolError
    framing     prefix + JSON header + raw payload; the protocol version; token check
    job         pixel formats, limits, choices, job validation, result sizes
    connection  the blocking client connection (handshake, run_job), TLS context
    discovery   the discovery file and the per-user folders
    spawn       starting a detached local server

See docs/protocol.md.
"""
from .connection import Connection, tls_client_context, try_connect
from .discovery import (APP_DIR_NAME, DISCOVERY_ENV, default_discovery_file, default_log_file, pid_alive,
                        read_discovery, state_dir, user_dir, write_discovery)
from .errors import ERROR_HINTS, ProtocolError
from .framing import (MAGIC, MAX_HEADER_BYTES, PREFIX, PROTOCOL_VERSION, check_token, decode_header, encode_frame,
                      parse_prefix, payload_length, recv_exactly, recv_frame, send_frame)
from .job import (AUTO_BAND, TRIMAP_BACKGROUND, TRIMAP_FOREGROUND, TRIMAP_UNKNOWN, DIGEST_CHARS, check_patch, image_digest, AUTO_BAND_REACH, DEFAULT_BAND_RADIUS, FIXED_BAND_RADIUS, DEFAULT_MAX_PIXELS, ENGINES, FORMATS, HARD_MAX_DIMENSION, IMAGE_FORMATS,
                  MASK_FORMATS, MAX_BAND_RADIUS, RESULT_DEPTHS, TRIMAP_SOURCES, buffer_size, max_job_payload,
                  result_sizes, validate_job)
from .spawn import spawn_server

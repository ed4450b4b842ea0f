"""Python client: find (or start) a server, send a job, get numpy arrays back."""
from __future__ import annotations

import os
import sys

import numpy as np

from drip_protocol import (
    DEFAULT_BAND_RADIUS,
    RESULT_DEPTHS,
    Connection,
    EdgeSettings,
    JobSpec,
    ProtocolError,
    default_discovery_file,
    default_log_file,
    read_discovery,
    spawn_server,
    tls_client_context,
    try_connect,
)
from drip_protocol.discovery import server_log_file

from .buffers import to_array, to_bytes
from .samples import depth_of

SERVER_COMMAND = [sys.executable, "-m", "drip_core.server"]


class Client:
    def __init__(self, connection: Connection):
        self.connection = connection

    @property
    def server_info(self) -> dict:
        return self.connection.server_info

    def close(self) -> None:
        self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def matte(self, image: np.ndarray, trimap: np.ndarray, engine: str = "auto", progress=None, *,
              trimap_source: str = "trimap", band_radius=DEFAULT_BAND_RADIUS, want_trimap: bool = False,
              return_info: bool = False, edge: EdgeSettings | None = None, preview: str | None = None):
        """Matte ``image`` (H x W x 3, or x 4 whose alpha is ignored; uint8, uint16 or float32) with
        ``trimap`` (uint8 or uint16 H x W).

        ``trimap`` may also be a selection mask with ``trimap_source`` 'selection_band' or
        'feathered'. Returns (foreground H x W x 3, alpha H x W) in the image's own sample type,
        plus the result header (engine used, note, seconds, and 'trimap' when asked for) if
        ``return_info``. ``edge``: edge controls applied after matting; ``preview``: a background
        (drip_protocol.PREVIEW_BACKGROUNDS) the foreground comes back composited over, as 8-bit RGB.
        """
        image, trimap = np.asarray(image), np.asarray(trimap)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ProtocolError("bad_image",
                                f"image must be H x W x 3 (or 4), got {image.dtype} {image.shape}")
        depth = depth_of(image)
        if trimap.dtype not in (np.uint8, np.uint16) or trimap.shape != image.shape[:2]:
            raise ProtocolError("bad_trimap", f"trimap must be uint8 or uint16 with the image's size "
                                              f"{image.shape[:2]}, got {trimap.dtype} {trimap.shape}")
        h, w = trimap.shape
        rgb_format, grey_format = RESULT_DEPTHS[depth]
        job = JobSpec(w, h, depth, mask_format="y16" if trimap.dtype == np.uint16 else "y8",
                      trimap_source=trimap_source, band_radius=band_radius, engine=engine,
                      want_trimap=want_trimap, edge=edge or EdgeSettings(), preview=preview)
        out = self.connection.run_job(job, to_bytes(image[:, :, :3]), to_bytes(trimap), progress)
        fg = to_array(out["foreground"], "rgb8" if preview else rgb_format, w, h)
        alpha = to_array(out["alpha"], grey_format, w, h)
        if not return_info:
            return fg, alpha
        info = dict(out["header"])
        if out["trimap"] is not None:
            info["trimap"] = to_array(out["trimap"], "y8", w, h)
        return fg, alpha, info

    def shutdown(self) -> None:
        self.connection.request({"type": "shutdown"})


def connect(discovery_file: str | None = None, spawn: bool = True, *, server_args: list[str] | None = None,
            wait: float = 60.0, log_file: str | None = None) -> Client:
    """Connect to the running server, or start one (detached) and wait for it.

    A started server logs to ``log_file``, else where the discovery file's last server logged (its
    record names the real file), else to the per-user default.
    """
    path = discovery_file or default_discovery_file()
    conn = try_connect(path)
    if conn is not None:
        return Client(conn)
    if not spawn:
        raise ProtocolError("no_server", f"no Drip server is running (looked in {path})")
    log_file = log_file or server_log_file(path, default_log_file())
    try:
        return Client(spawn_server(SERVER_COMMAND + list(server_args or []), path, log_file=log_file,
                                   wait=wait))
    except ProtocolError as exc:
        if exc.log_file and not os.path.exists(exc.log_file):
            exc.log_file = None  # the server never got as far as its log: naming it would mislead
        raise


def connect_address(host: str, port: int, token: str | None = None, discovery_file: str | None = None, *,
                    cafile: str | None = None) -> Client:
    """Connect to host:port; the token comes from the discovery file when not given.

    TLS is used when ``cafile`` (the CA or self-signed certificate to verify the server with)
    is given, or when the discovery file describes that server as a TLS one.
    """
    record = read_discovery(discovery_file or default_discovery_file())
    if record is not None and record.get("port") != port:
        record = None
    if token is None:
        if record is None:
            raise ProtocolError("auth_failed", f"no token known for {host}:{port}")
        token = record["token"]
    context = None
    if cafile is not None:
        context = tls_client_context(cafile)
    elif record is not None and record.get("tls"):
        cert = record.get("tls_cert")
        context = tls_client_context(cert if isinstance(cert, str) else None)
    return Client(Connection(host, port, token, ssl_context=context))

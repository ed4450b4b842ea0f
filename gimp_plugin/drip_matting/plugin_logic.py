"""The GIMP-free half of the Drip Matting plug-in: Python standard library only.

Everything here can be tested on a machine without GIMP (tests/test_plugin_logic.py):
region-of-interest arithmetic, babl format choice, byte packing, argument names,
config and server discovery, connecting (or starting) a server, and turning errors
into text for a person. drip_matting.py holds the calls into GIMP.

``protocol`` is the project's one wire protocol, the stdlib-only package ``drip_protocol``
(the installer ships it beside this file).
"""
from __future__ import annotations

import json
import os
import sys

import drip_protocol as protocol
from drip_protocol import ProtocolError
from drip_protocol.errors import user_text

PROC_NAME = "plug-in-drip-matting"
FG_LAYER = "Drip foreground"
ALPHA_LAYER = "Drip alpha"
TRIMAP_CHANNEL = "Drip trimap"   # each source layer has its own: "Drip trimap: <layer name>"
# Parasite on every item the plug-in makes (result layers, trimap channel): the tattoo of the
# source layer it belongs to, so a rerun from any of them finds its layer and its trimap.
SOURCE_PARASITE = "drip-matting-source"
# The trimap channel as the eye sees it when shown: magenta over background, half over unsure.
TRIMAP_COLOR = (1.0, 0.0, 1.0)
TRIMAP_OPACITY = 60.0
CONFIG_NAME = "drip_matting.json"
CLIENT_NAME = "drip-gimp/1"

# Context around the band: known pixels the engine sees around the unknown region.
DEFAULT_MARGIN = 32

# Dialog / PDB argument values (GIMP "choice" nicks) -> what goes on the wire.
TRIMAP_SOURCES = {
    "selection-band": "selection_band",
    "feathered-selection": "feathered",
    "trimap-channel": "trimap",
}
ENGINES = protocol.ENGINES
# outputs: which results to produce. The trimap channel is kept or not with keep-trimap.
OUTPUTS = {
    "foreground": ("foreground",),
    "alpha": ("alpha",),
    "foreground-and-alpha": ("foreground", "alpha"),
    "selection": ("selection",),
    "all": ("foreground", "alpha", "selection"),
}

# Local errors, in the same shape as the server's: the message says what happened, the hint
# only what to do (drip_protocol.errors.user_text puts them together, each said once).
LOCAL_HINTS = {
    "no_trimap_channel": ("Run Drip Matting once with the selection band (\"Trimap from\": \"Band around "
                          "the selection edge\"), which stores the trimap, paint on the channel (pure white "
                          "= object, pure black = background, anything else = unsure), then rerun."),
    "both_changed": ("Choose which one to use (\"Trimap from\" in Filters > Drip Matting...), or press "
                     "Select > None and repeat to rerun from your painting."),
    "image_gone": "Nothing was changed. Open the image again (or undo the deletion) and rerun Drip Matting.",
    "not_a_layer": "Select exactly one RGB or grey layer (not a channel, layer mask or group) and try again.",
    "indexed": "Convert it with Image > Mode > RGB first: Drip Matting works on RGB and grey images.",
    "outside_layer": ("Make the layer under the selection (or under the painted trimap) the active one, "
                      "or select part of the active layer."),
    "bad_server_arg": "Use 'auto' (find or start the local server) or host:port, such as 127.0.0.1:47001.",
    "no_token": ("Set DRIP_MATTING_TOKEN, or point DRIP_MATTING_SERVER_FILE at that server's discovery "
                 "file, or use server 'auto'."),
}


def result_layer_name(kind: str, source_name: str) -> str:
    """A new result layer's name says where it came from: "Drip foreground (Background)"."""
    return f"{kind} ({source_name})"


def trimap_channel_name(layer_name: str) -> str:
    """The name of a source layer's own trimap channel (another layer's is never overwritten)."""
    return f"{TRIMAP_CHANNEL}: {layer_name}"


def source_parasite_data(tattoo: int) -> bytes:
    return str(int(tattoo)).encode("ascii")


def parse_source_parasite(data) -> int | None:
    """The source layer's tattoo from a parasite's bytes, or None if they are not ours."""
    try:
        value = int(bytes(data).decode("ascii"))
    except (TypeError, ValueError, UnicodeDecodeError):
        return None
    return value if value > 0 else None


# The result a Drip layer holds: the server's result id and the layer's rectangle (image
# coordinates). A rerun names it, and the server then sends only the rectangle it re-solved.
RESULT_PARASITE = "drip-matting-result"


def result_parasite_data(result_id: str, rect) -> bytes:
    return " ".join([result_id, *(str(int(v)) for v in rect)]).encode("ascii")


def parse_result_parasite(data):
    """(result id, (x, y, w, h)) from a parasite's bytes, or None if they are not ours."""
    try:
        parts = bytes(data).decode("ascii").split()
        if len(parts) != 5 or not parts[0]:
            return None
        return parts[0], tuple(int(v) for v in parts[1:])
    except (TypeError, ValueError, UnicodeDecodeError):
        return None


def drip_model_configured(environ=None) -> bool:
    """Whether the server's config names a DRIP model (the dialog says when none is installed).
    Reads what drip_core.config reads: DRIP_MATTING_MODEL, else the config file's drip_model."""
    environ = os.environ if environ is None else environ
    if environ.get("DRIP_MATTING_MODEL"):
        return True
    path = environ.get("DRIP_MATTING_CONFIG") or os.path.join(protocol.user_dir("config"), "config.json")
    try:
        with open(path, "r", encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and bool(cfg.get("drip_model"))


# The dialog's fields, in order; the user's last values are kept in DIALOG_STATE.
DIALOG_FIELDS = ("trimap-source", "smart-band", "band-radius", "engine", "outputs", "keep-trimap",
                 "keep-source-visible", "server", "edge-shift", "edge-feather", "edge-contrast",
                 "colour-cleanup", "preview", "preview-background")
DIALOG_STATE = "gimp-dialog.json"


def dialog_state_file() -> str:
    return os.path.join(protocol.state_dir(), DIALOG_STATE)


def load_dialog_values(path: str | None = None) -> dict:
    try:
        with open(path or dialog_state_file(), "r", encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(values, dict):
        return {}
    return {k: v for k, v in values.items() if k in DIALOG_FIELDS and isinstance(v, (str, int, float, bool))}


def save_dialog_values(values: dict, path: str | None = None) -> None:
    """Best effort: losing the dialog's memory must never fail a run."""
    path = path or dialog_state_file()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in values.items() if k in DIALOG_FIELDS}, f)
        os.replace(path + ".tmp", path)
    except OSError:
        pass


def make_error(code: str, message: str, log_file: str | None = None) -> ProtocolError:
    """A local error: its LOCAL_HINTS hint, else the protocol's for the code."""
    return ProtocolError(code, message, hint=LOCAL_HINTS.get(code), log_file=log_file)


def user_message(exc: BaseException, log_file: str | None = None) -> str:
    """What the person sees, never a traceback: drip_protocol.errors.user_text, which names
    ``log_file`` (the server's log) only where it helps."""
    if isinstance(exc, ProtocolError):
        return "Drip Matting: " + exc.user_text(log_file=log_file)
    return "Drip Matting: " + user_text(
        "internal", f"the plug-in failed unexpectedly ({exc.__class__.__name__}: {exc})",
        "This is a bug: please report it with the plug-in's output (GIMP's error console or terminal).",
        log_file)


# ----------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------

def roi_from_bounds(bounds, grow: int, layer_offsets, layer_size):
    """Region of interest in LAYER coordinates, or None if it misses the layer.

    ``bounds`` = (x1, y1, x2, y2) in IMAGE coordinates, x2/y2 exclusive (what
    Gimp.Selection.bounds gives); it is grown by ``grow`` pixels on every side, moved
    into the layer's coordinates and clipped to the layer. Returns (x, y, w, h).
    """
    x1, y1, x2, y2 = bounds
    ox, oy = layer_offsets
    lw, lh = layer_size
    if grow < 0:
        raise ValueError("grow must be >= 0")
    rx1 = max(x1 - grow - ox, 0)
    ry1 = max(y1 - grow - oy, 0)
    rx2 = min(x2 + grow - ox, lw)
    ry2 = min(y2 + grow - oy, lh)
    if rx2 <= rx1 or ry2 <= ry1:
        return None
    return (rx1, ry1, rx2 - rx1, ry2 - ry1)


def band_reach(bounds, band_radius) -> int:
    """How far the band may extend from the selection's edge (protocol.band_reach decides), given
    the selection box ``bounds``: its area stands in for the selected area, which is never larger."""
    x1, y1, x2, y2 = bounds
    return protocol.band_reach(band_radius, (x2 - x1) * (y2 - y1))


def selection_roi(bounds, band_radius, layer_offsets, layer_size, margin: int = DEFAULT_MARGIN):
    """The selection's bounds plus the band's reach plus a margin, clipped to the layer."""
    return roi_from_bounds(bounds, band_reach(bounds, band_radius) + margin, layer_offsets, layer_size)


def nonzero_bounds(data, width: int, height: int):
    """Bounds (x1, y1, x2, y2), exclusive, of the non-zero bytes of a WxH 8-bit mask; None if all zero.

    Pure Python but C-speed: one strip per row.
    """
    data = bytes(data)
    if len(data) != width * height:
        raise ValueError(f"mask holds {len(data)} bytes, {width}x{height} needs {width * height}")
    x1, x2, y1, y2 = width, 0, None, None
    for y in range(height):
        row = data[y * width:(y + 1) * width]
        left = row.lstrip(b"\x00")
        if not left:
            continue
        if y1 is None:
            y1 = y
        y2 = y + 1
        first = width - len(left)
        last = len(row.rstrip(b"\x00"))
        x1 = min(x1, first)
        x2 = max(x2, last)
    if y1 is None:
        return None
    return (x1, y1, x2, y2)


def offset_rect(rect, dx: int, dy: int):
    x, y, w, h = rect
    return (x + dx, y + dy, w, h)


# ----------------------------------------------------------------------------------------
# Pixel formats
# ----------------------------------------------------------------------------------------

# GIMP sample type -> (protocol depth, bytes per sample, array typecode). u32, half and double
# layers travel as float: more levels than 16 bits, and the server works in float anyway.
SAMPLE_TYPES = {"u8": (8, 1, "B"), "u16": (16, 2, "H"), "float": (32, 4, "f")}


def precision_info(precision_nick: str) -> dict:
    """From a Gimp.Precision nick ('u8-non-linear', 'u16-linear', 'float-perceptual', ...).

    Returns the protocol depth, the wire image format, and the babl formats to use: colour
    data always in perceptual R'G'B' (what the engines expect) at the layer's own precision,
    masks and selections in the image's own transfer curve so their stored numbers are used
    as is, and the painted trimap / alpha preview layer in perceptual grey (what the eye
    sees: a mid-grey brush is "unknown" whatever the precision).
    """
    nick = (precision_nick or "u8-non-linear").lower().replace("_", "-")
    t = "u8" if nick.startswith("u8") else "u16" if nick.startswith("u16") else "float"
    if nick.endswith("non-linear"):
        trc = "Y'"
    elif nick.endswith("perceptual"):
        trc = "Y~"
    elif nick.endswith("linear"):
        trc = "Y"
    else:
        trc = "Y'"
    depth, sample_bytes, typecode = SAMPLE_TYPES[t]
    return {
        "depth": depth,                  # the job's result_depth: results come back at the layer's precision
        "sample_bytes": sample_bytes,
        "typecode": typecode,
        "wire_format": protocol.RESULT_DEPTHS[depth][0],
        "rgb": f"R'G'B' {t}",
        "rgba": f"R'G'B'A {t}",
        "mask": f"{trc} {t}",            # layer mask, selection (stored coverage values)
        "mask8": f"{trc} u8",            # selection sent to the server
        "grey": f"Y' {t}",               # "Drip alpha" layer content
        "trimap": "Y' u8",               # "Drip trimap" channel, read and written
    }


def to_little_endian(data, typecode: str):
    """babl's samples are native-endian; the protocol's are little-endian (and back)."""
    if sys.byteorder == "little" or typecode == "B":
        return data
    import array
    a = array.array(typecode)
    a.frombytes(bytes(data))
    a.byteswap()
    return a.tobytes()


from_little_endian = to_little_endian


def split_alpha(data, width: int, height: int, typecode: str):
    """RGBA samples -> (RGB bytes, A bytes): only RGB goes to the server; the layer's own
    transparency stays here and is put back on the result."""
    n = width * height
    src = memoryview(bytes(data)).cast(typecode)
    if len(src) != n * 4:
        raise ValueError("RGBA buffer has the wrong size")
    size = src.itemsize
    rgb = memoryview(bytearray(n * 3 * size)).cast(typecode)
    a = memoryview(bytearray(n * size)).cast(typecode)
    rgb[0::3] = src[0::4]
    rgb[1::3] = src[1::4]
    rgb[2::3] = src[2::4]
    a[:] = src[3::4]
    return rgb.tobytes(), a.tobytes()


def merge_alpha(rgb, alpha, width: int, height: int, typecode: str) -> bytes:
    """(RGB bytes, A bytes) -> RGBA bytes."""
    n = width * height
    src = memoryview(bytes(rgb)).cast(typecode)
    a = memoryview(bytes(alpha)).cast(typecode)
    if len(src) != n * 3 or len(a) != n:
        raise ValueError("RGB/alpha buffers have the wrong size")
    out = memoryview(bytearray(n * 4 * src.itemsize)).cast(typecode)
    out[0::4] = src[0::3]
    out[1::4] = src[1::3]
    out[2::4] = src[2::3]
    out[3::4] = a
    return out.tobytes()


class TrimapTiles:
    """Which trimap values each tile x tile cell of a job's trimap (one byte per pixel) holds,
    from one scan: the rectangles a result write must send (GIMP's plug-in tile transfer is the
    slow part of writing a large result, and most cells hold one value only)."""

    VALUES = (protocol.TRIMAP_BACKGROUND, protocol.TRIMAP_UNKNOWN, protocol.TRIMAP_FOREGROUND)

    def __init__(self, plane, width: int, height: int, tile: int = 64):
        self.width, self.height, self.tile = width, height, tile
        plane = bytes(plane)  # a memoryview's "in" looks for an element, not a byte string
        self.cells = []  # per row of cells, per cell: the set of VALUES it holds
        for y0 in range(0, height, tile):
            rows = range(y0, min(height, y0 + tile))
            row_cells = []
            for x0 in range(0, width, tile):
                x1 = min(width, x0 + tile)
                cell = b"".join(plane[r * width + x0:r * width + x1] for r in rows)
                row_cells.append({v for v in self.VALUES if bytes([v]) in cell})
            self.cells.append(row_cells)

    def holding(self, values) -> list:
        """Rectangles (x, y, w, h) covering the cells that hold any of ``values`` (an int or
        ints), neighbouring cells of a row of cells merged into one rectangle."""
        wanted = {values} if isinstance(values, int) else set(values)
        rects = []
        for i, row_cells in enumerate(self.cells):
            y0 = i * self.tile
            h = min(self.height, y0 + self.tile) - y0
            busy = [bool(cell & wanted) for cell in row_cells]
            x = 0
            while x < len(busy):
                if not busy[x]:
                    x += 1
                    continue
                end = x
                while end + 1 < len(busy) and busy[end + 1]:
                    end += 1
                rects.append((x * self.tile, y0, min(self.width, (end + 1) * self.tile) - x * self.tile, h))
                x = end + 1
        return rects

    def mask_plan(self) -> tuple[bool, list]:
        """(start white?, rectangles to write) for a layer mask holding the job's alpha: alpha is 1
        on the trimap's foreground and 0 on its background, so a mask started white needs only
        the cells holding background or unknown pixels written, one started black those holding
        foreground or unknown ones; the cheaper of the two."""
        white = self.holding((protocol.TRIMAP_BACKGROUND, protocol.TRIMAP_UNKNOWN))
        black = self.holding((protocol.TRIMAP_FOREGROUND, protocol.TRIMAP_UNKNOWN))

        def area(rects):
            return sum(r[2] * r[3] for r in rects)

        return (True, white) if area(white) <= area(black) else (False, black)


def crop_rect(src, src_width: int, rect, bpp: int = 1) -> bytes:
    """The (w x h) block at rect's x, y of a src_width-wide buffer of ``bpp``-byte pixels."""
    x, y, w, h = rect
    out = bytearray(w * h * bpp)
    row = w * bpp
    for j in range(h):
        s = ((y + j) * src_width + x) * bpp
        out[j * row:(j + 1) * row] = src[s:s + row]
    return bytes(out)


# ----------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------

def parse_server_arg(value):
    """'auto' (or empty) -> None; 'host:port' or '[v6]:port' -> (host, port)."""
    value = (value or "").strip()
    if value.lower() in ("", "auto"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise make_error("bad_server_arg", f"server '{value}' is not 'auto' or host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port_num = int(port)
    except ValueError:
        port_num = -1
    if not 0 < port_num < 65536:
        raise make_error("bad_server_arg", f"server '{value}' has no valid port")
    return host, port_num


def build_job(roi_w: int, roi_h: int, result_depth: int, trimap_source_nick: str, band_radius: int,
              engine: str, want_trimap: bool = True) -> protocol.JobSpec:
    """A job for an RGB region read at the layer's precision (the image format follows
    ``result_depth``); the result comes back at it too. Raises ProtocolError."""
    if trimap_source_nick not in TRIMAP_SOURCES:
        raise make_error("bad_request", f"unknown trimap source '{trimap_source_nick}'")
    if engine not in ENGINES:
        raise make_error("bad_request", f"unknown engine '{engine}'")
    if band_radius != protocol.AUTO_BAND:
        band_radius = int(band_radius)
    return protocol.JobSpec(roi_w, roi_h, result_depth, mask_format="y8",
                            trimap_source=TRIMAP_SOURCES[trimap_source_nick], band_radius=band_radius,
                            engine=engine, want_trimap=bool(want_trimap))


# ----------------------------------------------------------------------------------------
# Config, discovery, connection
# ----------------------------------------------------------------------------------------

def load_config(plugin_dir: str) -> dict:
    """drip_matting.json written by the installer; {} if absent or unreadable."""
    path = os.path.join(plugin_dir, CONFIG_NAME)
    try:
        with open(path, "r", encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def discovery_file(config: dict, environ=None) -> str:
    """DRIP_MATTING_SERVER_FILE, else the config's discovery_file, else the per-user default."""
    environ = os.environ if environ is None else environ
    return (environ.get(protocol.DISCOVERY_ENV) or config.get("discovery_file")
            or os.path.join(protocol.state_dir(), "server.json"))


def log_file_hint(config: dict, environ=None) -> str:
    """The log a message should name: the one the running (or last) server's discovery record
    names, else the installer's config's, else the per-user default."""
    fallback = config.get("log_file") or protocol.default_log_file()
    return protocol.server_log_file(discovery_file(config, environ), fallback)


def address_record(port: int, disc_path: str):
    """The discovery record, if it describes the server on ``port``."""
    record = protocol.read_discovery(disc_path)
    return record if record is not None and record.get("port") == port else None


def token_for(host: str, port: int, disc_path: str, environ=None) -> str:
    environ = os.environ if environ is None else environ
    token = environ.get("DRIP_MATTING_TOKEN")
    if token:
        return token
    record = address_record(port, disc_path)
    if record is not None:
        return record["token"]
    raise make_error("no_token", f"no token for {host}:{port} (looked in {disc_path})")


def tls_context_for(port: int, disc_path: str, environ=None):
    """TLS for a host:port server: DRIP_MATTING_TLS_CA (a CA or the server's self-signed
    certificate), else what the discovery file says about that server; None = plain TCP."""
    environ = os.environ if environ is None else environ
    cafile = environ.get("DRIP_MATTING_TLS_CA")
    if cafile:
        return protocol.tls_client_context(cafile)
    record = address_record(port, disc_path)
    if record is not None and record.get("tls"):
        cert = record.get("tls_cert")
        return protocol.tls_client_context(cert if isinstance(cert, str) else None)
    return None


def connect(server_arg: str, config: dict, *, on_wait=None, environ=None, spawn_wait: float = 120.0):
    """A protocol.Connection to the server the arguments and config name.

    'auto': the discovery file's server; if none answers, start the config's
    server_command and wait for it (``on_wait(seconds)`` while waiting).
    'host:port': that server, with the token from DRIP_MATTING_TOKEN or the discovery file,
    over TLS when DRIP_MATTING_TLS_CA is set or the discovery file says so.
    """
    disc = discovery_file(config, environ)
    log = log_file_hint(config, environ)
    address = parse_server_arg(server_arg)
    if address is not None:
        host, port = address
        token = token_for(host, port, disc, environ)
        context = tls_context_for(port, disc, environ)
        return protocol.Connection(host, port, token, client=CLIENT_NAME, ssl_context=context)
    conn = protocol.try_connect(disc, client=CLIENT_NAME)
    if conn is not None:
        return conn
    command = config.get("server_command")
    if not command or not isinstance(command, list):
        raise ProtocolError("no_server", f"no Drip server is running (looked in {disc}) and the plug-in's "
                                         f"config names no command to start one", log_file=log)
    return protocol.spawn_server([str(c) for c in command], disc, log_file=config.get("log_file"),
                                 wait=spawn_wait, on_wait=on_wait, client=CLIENT_NAME)


# ----------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------

Stage = protocol.Stage
# What a person reads for each stage the server reports (tests check every Stage has one).
STAGE_TEXT = {
    Stage.QUEUED: "waiting for the server",
    Stage.PREPARING: "building the trimap",
    Stage.LOADING_MODEL: "loading model",
    Stage.STARTING: "starting the engine",  # (the plug-in's own wait for a server: "starting server")
    Stage.ALPHA: "computing alpha",
    Stage.FOREGROUND: "estimating foreground",
    Stage.ENCODING: "encoding the image",
    Stage.DENOISING: "refining",            # message: "step i/n" (or "tile k/n, step i/n")
    Stage.DECODING: "decoding the matte",
    Stage.DONE: "done",
}
# A stage this version does not know (a newer server's): said as "working (<stage>: <message>)".
UNKNOWN_STAGE_TEXT = "working"

# The server's part of the run maps to this span of GIMP's progress bar.
SERVER_SPAN = (0.05, 0.9)


def progress_text(stage: str, message: str = "") -> str:
    """The progress bar's text for a server's progress message."""
    message = message or ""
    known = Stage.of(stage) if isinstance(stage, str) else None
    if known == Stage.QUEUED and message in ("", "starting"):
        return "Drip Matting: job accepted"
    if known is None:
        # a newer server's stage: say it as it is named, clipped
        name = " ".join(str(stage or "").replace("_", " ").split())[:40]
        message = f"{name}: {message}" if name and message else name or message
        base = UNKNOWN_STAGE_TEXT
    else:
        base = STAGE_TEXT[known]
    if message.lower() in (base, base.replace("the ", "")):
        message = ""
    return f"Drip Matting: {base} ({message})" if message else f"Drip Matting: {base}"


def overall_fraction(server_fraction: float) -> float:
    lo, hi = SERVER_SPAN
    f = min(max(float(server_fraction), 0.0), 1.0)
    return lo + (hi - lo) * f

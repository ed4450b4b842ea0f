"""What a job is on the wire: pixel formats, limits, choices, and the validation of a job header.

Images are RGB only (the layer's own transparency stays with the plug-in) at the layer's
precision: 8-bit, 16-bit or 32-bit float samples, all little-endian. The result comes back
at ``result_depth`` (8, 16 or 32 = float).
"""
from __future__ import annotations

import hashlib
import json

from .errors import ProtocolError

DEFAULT_MAX_PIXELS = 64 * 1024 * 1024  # 64 megapixels: an 8K x 8K layer
HARD_MAX_DIMENSION = 65536

# Pixel formats: name -> (channels, bytes per sample). 'f32' samples are IEEE floats, 0..1.
FORMATS = {
    "rgb8": (3, 1),
    "rgb16": (3, 2),
    "rgbf32": (3, 4),
    "y8": (1, 1),
    "y16": (1, 2),
    "yf32": (1, 4),
}
IMAGE_FORMATS = ("rgb8", "rgb16", "rgbf32")
MASK_FORMATS = ("y8", "y16")
RESULT_DEPTHS = {8: ("rgb8", "y8"), 16: ("rgb16", "y16"), 32: ("rgbf32", "yf32")}

# How the server turns the mask it receives into a trimap.
TRIMAP_SOURCES = ("trimap", "selection_band", "feathered")
# The values of a trimap as the server builds it and returns it (y8).
TRIMAP_BACKGROUND, TRIMAP_UNKNOWN, TRIMAP_FOREGROUND = 0, 128, 255
# The engines a job may ask for; 'auto' leaves the choice to the server (see engines/registry.py).
ENGINES = ("auto", "classical", "drip")
# The unknown band around a selection's edge, for every client: "auto" = the smart band
# (drip_core/smart_band.py: wide over hair and mixed colours, narrow on crisp edges), or a
# half-width in pixels (a fixed band).
AUTO_BAND = "auto"
DEFAULT_BAND_RADIUS = AUTO_BAND
FIXED_BAND_RADIUS = 12     # the plug-in's radius when the smart band is switched off
MAX_BAND_RADIUS = 4096
# How far from the selection's edge the smart band may look and reach, as a fraction of the
# object's scale sqrt(selected area): the plug-in reads that much around the selection.
AUTO_BAND_REACH = 0.15


# A job may name its image by digest and leave the pixels out (``image_cached``): the server
# takes them from its cache of this token's recent images, or answers ``image_not_cached``
# and the client sends the job again with the pixels (docs/protocol.md, "Image cache").
DIGEST_CHARS = 64  # sha256, lowercase hex


def image_digest(image, image_format: str, width: int, height: int) -> str:
    """The digest a job names its image by: sha256 of its size, format and bytes."""
    h = hashlib.sha256(f"{image_format}:{width}x{height}:".encode("ascii"))
    h.update(image)
    return h.hexdigest()


def _digest_field(header: dict):
    v = header.get("image_digest")
    if v is None:
        return None
    if not isinstance(v, str) or len(v) != DIGEST_CHARS or v.strip("0123456789abcdef"):
        raise ProtocolError("bad_request", f"field 'image_digest' must be {DIGEST_CHARS} lowercase hex digits")
    return v


def _result_id_field(header: dict):
    v = header.get("base_result")
    if v is None:
        return None
    if not isinstance(v, str) or not 0 < len(v) <= 64 or v.strip("0123456789abcdef"):
        raise ProtocolError("bad_request", "field 'base_result' must be a result id (at most 64 lowercase hex digits)")
    return v


def _int_field(header: dict, name: str, lo: int, hi: int, default=None) -> int:
    v = header.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ProtocolError("bad_request", f"field '{name}' must be an integer in {lo}..{hi}, got {v!r}")
    return v


def _choice_field(header: dict, name: str, choices, default=None):
    v = header.get(name, default)
    # exact type too: 8.0 or True must not pass for 8
    if not any(type(v) is type(c) and v == c for c in choices):
        raise ProtocolError("bad_request", f"field '{name}' must be one of {', '.join(map(str, choices))}, "
                                           f"got {v!r}")
    return v


def _band_radius_field(header: dict):
    if header.get("band_radius", DEFAULT_BAND_RADIUS) == AUTO_BAND:
        return AUTO_BAND
    return _int_field(header, "band_radius", 0, MAX_BAND_RADIUS)


def buffer_size(fmt: str, width: int, height: int) -> int:
    channels, sample_bytes = FORMATS[fmt]
    return width * height * channels * sample_bytes


def validate_job(header: dict, max_pixels: int) -> dict:
    """Check a ``job`` header and return a normalised copy. Raises ProtocolError.

    The pixel count is checked here, from the header alone, before any payload is read.
    """
    job_id = header.get("id")
    if not isinstance(job_id, str) or not 0 < len(job_id) <= 128:
        raise ProtocolError("bad_request", "field 'id' must be a non-empty string of at most 128 characters")
    width = _int_field(header, "width", 0, HARD_MAX_DIMENSION)
    height = _int_field(header, "height", 0, HARD_MAX_DIMENSION)
    if width == 0 or height == 0:
        raise ProtocolError("bad_image", f"the image is empty ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise ProtocolError("too_large", f"{width}x{height} = {width * height} pixels exceeds the server's limit of {max_pixels}")
    job = {
        "id": job_id,
        "width": width,
        "height": height,
        "image_format": _choice_field(header, "image_format", IMAGE_FORMATS),
        "mask_format": _choice_field(header, "mask_format", MASK_FORMATS, "y8"),
        "trimap_source": _choice_field(header, "trimap_source", TRIMAP_SOURCES, "trimap"),
        "band_radius": _band_radius_field(header),
        "engine": _choice_field(header, "engine", ENGINES, "auto"),
        "result_depth": _choice_field(header, "result_depth", tuple(RESULT_DEPTHS), 8),
        "want_trimap": bool(header.get("want_trimap", False)),
        "image_digest": _digest_field(header),
        "image_cached": header.get("image_cached", False) is True,
        "base_result": _result_id_field(header),
    }
    if job["image_cached"] and job["image_digest"] is None:
        raise ProtocolError("bad_request", "a job with 'image_cached' must name its 'image_digest'")
    options = header.get("options", {})
    try:
        small = isinstance(options, dict) and len(json.dumps(options)) <= 4096
    except (ValueError, RecursionError):
        small = False
    if not small:
        raise ProtocolError("bad_request", "field 'options' must be a small JSON object")
    job["options"] = options
    image_len = 0 if job["image_cached"] else buffer_size(job["image_format"], width, height)
    job["payload_len"] = image_len + buffer_size(job["mask_format"], width, height)
    return job


def max_job_payload(max_pixels: int) -> int:
    """Largest payload a valid job can carry (rgbf32 image + y16 mask)."""
    return max_pixels * (12 + 2)


def result_sizes(job: dict, patch=None) -> tuple[int, int, int]:
    """Byte sizes of (foreground, alpha, trimap) in a result payload for a validated job, or in
    a result that is a ``patch`` (x, y, w, h) of the job's previous result."""
    w, h = (job["width"], job["height"]) if patch is None else patch[2:]
    rgb, grey = RESULT_DEPTHS[job["result_depth"]]
    return (buffer_size(rgb, w, h), buffer_size(grey, w, h),
            buffer_size("y8", w, h) if job["want_trimap"] else 0)


def check_patch(value, width: int, height: int) -> tuple[int, int, int, int]:
    """A result's ``patch`` field: [x, y, w, h] inside the job's width x height."""
    if not (isinstance(value, list) and len(value) == 4 and all(type(v) is int and v >= 0 for v in value)):
        raise ProtocolError("bad_frame", "a result's 'patch' must be [x, y, w, h]")
    x, y, w, h = value
    if x + w > width or y + h > height:
        raise ProtocolError("bad_frame", f"the result's patch {value} is outside the {width}x{height} image")
    return x, y, w, h

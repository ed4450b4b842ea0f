"""What a job is on the wire: pixel formats, limits, choices, and the validation of a job header.

Images are RGB only (the layer's own transparency stays with the plug-in) at the layer's
precision: 8-bit, 16-bit or 32-bit float samples, all little-endian. The result comes back
at ``result_depth`` (8, 16 or 32 = float).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field

from .edges import PREVIEW_BACKGROUNDS, EdgeSettings
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


def buffer_size(fmt: str, width: int, height: int) -> int:
    channels, sample_bytes = FORMATS[fmt]
    return width * height * channels * sample_bytes


@dataclass(frozen=True)
class JobSpec:
    """One job, as every client builds it and the server reads it: the one constructor (it
    validates every field) and the one serialiser (``to_header`` / ``from_header``)."""
    width: int
    height: int
    result_depth: int = 8           # the layer's precision: 8, 16 or 32 (float)
    image_format: str = ""          # "" = the result depth's RGB format (IMAGE_FORMATS)
    mask_format: str = "y8"
    trimap_source: str = "trimap"   # TRIMAP_SOURCES
    band_radius: int | str = DEFAULT_BAND_RADIUS  # selection_band: AUTO_BAND or pixels
    engine: str = "auto"            # ENGINES; 'auto' leaves the choice to the server
    want_trimap: bool = False       # send back the trimap the server built
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    image_digest: str | None = None  # the image's name in the server's cache (image_digest())
    image_cached: bool = False      # the pixels are left out: take them from the cache
    base_result: str | None = None  # the previous result the client holds (a rerun may send a patch)
    options: dict = field(default_factory=dict)  # small JSON object (test hooks)
    edge: EdgeSettings = EdgeSettings()  # edge controls applied after matting (edges.py)
    preview: str | None = None      # PREVIEW_BACKGROUNDS: the foreground comes back composited over it

    def __post_init__(self):
        _check_id(self.id)
        _check_size(self.width, self.height)
        _check_choice("result_depth", self.result_depth, tuple(RESULT_DEPTHS))
        if self.image_format == "":
            object.__setattr__(self, "image_format", RESULT_DEPTHS[self.result_depth][0])
        _check_choice("image_format", self.image_format, IMAGE_FORMATS)
        _check_choice("mask_format", self.mask_format, MASK_FORMATS)
        _check_choice("trimap_source", self.trimap_source, TRIMAP_SOURCES)
        if self.band_radius != AUTO_BAND:
            _check_int("band_radius", self.band_radius, 0, MAX_BAND_RADIUS)
        _check_choice("engine", self.engine, ENGINES)
        _check_hex("image_digest", self.image_digest, DIGEST_CHARS, DIGEST_CHARS,
                   f"{DIGEST_CHARS} lowercase hex digits")
        _check_hex("base_result", self.base_result, 1, 64, "a result id (at most 64 lowercase hex digits)")
        if self.image_cached and self.image_digest is None:
            raise ProtocolError("bad_request", "a job with 'image_cached' must name its 'image_digest'")
        _check_options(self.options)
        if not isinstance(self.edge, EdgeSettings):
            raise ProtocolError("bad_request", "field 'edge' must be edge settings")
        if self.preview is not None:
            _check_choice("preview", self.preview, PREVIEW_BACKGROUNDS)
            _check_choice("result_depth (of a preview)", self.result_depth, (8,))

    @classmethod
    def from_header(cls, header: dict, max_pixels: int) -> "JobSpec":
        """The job a ``job`` header describes. Raises ProtocolError; the pixel count is checked
        from the header alone, before any payload is read."""
        _check_id(header.get("id"))
        _check_size(header.get("width"), header.get("height"))
        _check_pixels(header["width"], header["height"], max_pixels)
        _check_choice("image_format", header.get("image_format"), IMAGE_FORMATS)
        fields = {k: header[k] for k in _HEADER_FIELDS if k in header}
        fields.update(want_trimap=bool(header.get("want_trimap", False)),
                      image_cached=header.get("image_cached", False) is True,
                      edge=EdgeSettings.from_header(header.get("edge")))
        return cls(**fields)

    def to_header(self) -> dict:
        """The ``job`` frame's header (the image and mask bytes follow it as the payload)."""
        header = {"type": "job", **{k: getattr(self, k) for k in _HEADER_FIELDS},
                  "edge": self.edge.to_header()}
        return {k: v for k, v in header.items() if v is not None and v != {}}

    def check_size(self, max_pixels: int) -> None:
        """Raise too_large when the image has more pixels than a server takes."""
        _check_pixels(self.width, self.height, max_pixels)

    def result_id(self, matte_id: str) -> str:
        """The id of the result this job gets from the matte ``matte_id``: its edge controls and
        preview are part of it, so a client holding a differently finished result is never sent
        a patch of this one."""
        if self.edge.is_identity and self.preview is None:
            return matte_id
        text = json.dumps([matte_id, self.edge.to_header(), self.preview], sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def replace(self, **changes) -> "JobSpec":
        return dataclasses.replace(self, **changes)

    @property
    def image_len(self) -> int:
        """Bytes of the image in the payload (none when the server takes it from its cache)."""
        return 0 if self.image_cached else buffer_size(self.image_format, self.width, self.height)

    @property
    def payload_len(self) -> int:
        return self.image_len + buffer_size(self.mask_format, self.width, self.height)


_HEADER_FIELDS = ("id", "width", "height", "image_format", "mask_format", "trimap_source", "band_radius",
                  "engine", "result_depth", "want_trimap", "image_digest", "image_cached", "base_result",
                  "options", "preview")


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ProtocolError("too_large", f"{width}x{height} = {width * height} pixels exceeds the server's "
                                         f"limit of {max_pixels}")


def _check_id(job_id) -> None:
    if not isinstance(job_id, str) or not 0 < len(job_id) <= 128:
        raise ProtocolError("bad_request", "field 'id' must be a non-empty string of at most 128 characters")


def _check_int(name: str, v, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ProtocolError("bad_request", f"field '{name}' must be an integer in {lo}..{hi}, got {v!r}")


def _check_choice(name: str, v, choices) -> None:
    # exact type too: 8.0 or True must not pass for 8
    if not any(type(v) is type(c) and v == c for c in choices):
        raise ProtocolError("bad_request", f"field '{name}' must be one of {', '.join(map(str, choices))}, "
                                           f"got {v!r}")


def _check_hex(name: str, v, shortest: int, longest: int, what: str) -> None:
    if v is not None and (not isinstance(v, str) or not shortest <= len(v) <= longest
                          or v.strip("0123456789abcdef")):
        raise ProtocolError("bad_request", f"field '{name}' must be {what}")


def _check_options(options) -> None:
    try:
        small = isinstance(options, dict) and len(json.dumps(options)) <= 4096
    except (ValueError, RecursionError, TypeError):
        small = False
    if not small:
        raise ProtocolError("bad_request", "field 'options' must be a small JSON object")


def _check_size(width, height) -> None:
    _check_int("width", width, 0, HARD_MAX_DIMENSION)
    _check_int("height", height, 0, HARD_MAX_DIMENSION)
    if width == 0 or height == 0:
        raise ProtocolError("bad_image", f"the image is empty ({width}x{height} pixels)")


def band_reach(band_radius, selected_area: int) -> int:
    """How far (pixels) from a selection's edge the trimap may differ from the selection: a fixed
    band's radius, or for the smart band AUTO_BAND_REACH x the object's scale (the square root of
    ``selected_area``; a client that only knows the selection's bounding box gives its area, which
    is never smaller) plus two pixels of rounding."""
    if band_radius == AUTO_BAND:
        return int(math.ceil(AUTO_BAND_REACH * math.sqrt(max(1, selected_area)))) + 2
    return int(band_radius)


def max_job_payload(max_pixels: int) -> int:
    """Largest payload a valid job can carry (rgbf32 image + y16 mask)."""
    return max_pixels * (12 + 2)


def result_sizes(job: JobSpec, patch=None) -> tuple[int, int, int]:
    """Byte sizes of (foreground, alpha, trimap) in a result payload for a job, or in a result
    that is a ``patch`` (x, y, w, h) of the job's previous result."""
    w, h = (job.width, job.height) if patch is None else patch[2:]
    rgb, grey = RESULT_DEPTHS[job.result_depth]
    return (buffer_size(rgb, w, h), buffer_size(grey, w, h),
            buffer_size("y8", w, h) if job.want_trimap else 0)


def check_patch(value, width: int, height: int) -> tuple[int, int, int, int]:
    """A result's ``patch`` field: [x, y, w, h] inside the job's width x height."""
    if not (isinstance(value, list) and len(value) == 4 and all(type(v) is int and v >= 0 for v in value)):
        raise ProtocolError("bad_frame", "a result's 'patch' must be [x, y, w, h]")
    x, y, w, h = value
    if x + w > width or y + h > height:
        raise ProtocolError("bad_frame", f"the result's patch {value} is outside the {width}x{height} image")
    return x, y, w, h

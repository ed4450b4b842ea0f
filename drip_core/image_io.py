"""Reading and writing images at their own depth: 8-bit, 16-bit (PNG, TIFF) and float (TIFF).

Pillow keeps 8-bit colour and 16-bit / float greyscale, but reads a 16-bit colour PNG as
8 bits; such PNGs go through pypng and TIFFs through tifffile, so a 16-bit photo's samples
reach the engine and come back unchanged.
"""
from __future__ import annotations

import io
import os
import warnings
import zlib

import numpy as np

from drip_protocol import DEFAULT_MAX_PIXELS

from .errors import UserError

TIFF_SUFFIXES = (".tif", ".tiff")
# Pillow modes whose samples numpy takes as they are: grey (+ alpha) and colour (+ alpha)
_AS_STORED = ("L", "LA", "RGB", "RGBA")
# zlib's run-length strategy for 8-bit PNGs: after PNG's row filters a matte or a cut-out is
# mostly runs, which it packs as small as the default strategy does, in far less time
PNG_STRATEGY = zlib.Z_RLE
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}  # what batch mode picks up


class ImageFileError(Exception):
    """A file that cannot be read or written; the message says which and why."""


def read_channels(path: str) -> np.ndarray:
    """H x W x C (C = 1 grey, 2 grey + alpha, 3 colour, 4 colour + alpha), uint8, uint16 or float32."""
    try:
        if path.lower().endswith(TIFF_SUFFIXES):
            pixels = _read_tiff(path)
        elif _png_bit_depth(path) == 16:
            pixels = _read_png16(path)
        else:
            pixels = _read_pillow(path)
    except FileNotFoundError:
        raise ImageFileError(f"no such file: {path}") from None
    except ImageFileError:
        raise
    except (OSError, ValueError) as exc:
        raise ImageFileError(f"cannot read {path}: {exc}") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ImageFileError(f"{path} is not a greyscale or colour image (shape {pixels.shape})")
    return pixels


def read_rgb(path: str) -> np.ndarray:
    """H x W x 3 uint8, uint16 or float32 (0..1); greyscale is repeated, alpha dropped."""
    pixels = read_channels(path)
    rgb = np.repeat(pixels[:, :, :1], 3, axis=2) if pixels.shape[2] <= 2 else pixels[:, :, :3]
    return np.ascontiguousarray(rgb)


def read_image(path: str) -> np.ndarray:
    """``read_rgb`` of a file the user named: a file they can fix is a UserError."""
    try:
        return read_rgb(path)
    except ImageFileError as exc:
        raise UserError(str(exc)) from None


# --- masks and trimaps the user names ------------------------------------------------------

def read_guide(path: str, kind: str) -> np.ndarray:
    """The one channel of a selection mask (``kind`` 'mask') or a trimap ('trimap'), H x W at the
    file's depth. A colour image (red, green and blue differ) is refused: it is a photo, not a
    mask. A mask with transparency whose visible colour is uniform (a white layer whose alpha
    carries the selection) gives its alpha; a trimap's alpha is ignored, as always."""
    pixels = read_image_channels(path)
    colour = pixels[:, :, :3] if pixels.shape[2] >= 3 else pixels[:, :, :1]
    if kind == "mask" and pixels.shape[2] in (2, 4):
        alpha = pixels[:, :, -1]
        if alpha.min() < _full_scale(alpha):  # not opaque everywhere: the alpha may be the selection
            visible = colour[alpha > 0]
            if visible.size == 0 or (visible == visible[0]).all():
                return alpha
            raise UserError(f"the mask {path} has both varying colours and transparency, so which one is "
                            "the selection is unclear: save it black (not selected) and white (selected) "
                            "without alpha, or in one colour with the selection in its alpha")
    if _is_colour(colour):
        raise UserError(f"the {kind} {path} is a colour image (its red, green and blue differ), "
                        f"not a {kind}: "
                        f"{_GUIDE_WORDS[kind]} (did you give the photo?)")
    return colour[:, :, 0]


_GUIDE_WORDS = {"mask": "a mask is white where the object is selected and black elsewhere",
                "trimap": "a trimap is white (foreground), black (background) and grey (unsure)"}


def read_image_channels(path: str) -> np.ndarray:
    """``read_channels`` of a file the user named: a file they can fix is a UserError."""
    try:
        return read_channels(path)
    except ImageFileError as exc:
        raise UserError(str(exc)) from None


def is_jpeg(path: str) -> bool:
    """A JPEG by its content (whatever its name): lossy, so its values are not exactly as painted."""
    try:
        with open(path, "rb") as f:
            return f.read(3) == b"\xff\xd8\xff"
    except OSError:
        return False


def _full_scale(pixels: np.ndarray) -> float:
    return float(np.iinfo(pixels.dtype).max) if np.issubdtype(pixels.dtype, np.integer) else 1.0


def _is_colour(rgb: np.ndarray) -> bool:
    """Red, green and blue differ by over a tenth of full scale on over 1 % of the pixels (a grey
    picture saved in colour, JPEG'd included, stays well below)."""
    if rgb.shape[2] < 3:
        return False
    red, green, blue = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    # channel against channel, in the samples' own type: numpy reduces along a 3-long last axis
    # very slowly, and max >= min, so the unsigned difference never wraps
    spread = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    limit = 0.1 * _full_scale(rgb)
    if np.issubdtype(spread.dtype, np.integer):
        limit = int(limit)  # a whole-number spread exceeds 25.5 exactly when it exceeds 25
    return np.count_nonzero(spread > limit) / spread.size > 0.01


# --- writing ------------------------------------------------------------------------------------

WRITE_SUFFIXES = (".png", *TIFF_SUFFIXES)


def output_problem(path: str, what: str, alpha: bool) -> str | None:
    """Why ``write`` cannot put ``what`` (with an alpha channel when ``alpha``) into ``path``, by
    its name, or None when it can: drip-matte writes PNG or TIFF only."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in WRITE_SUFFIXES:
        return None
    if suffix in (".jpg", ".jpeg"):
        reason = ("a JPEG has no alpha channel" if alpha else
                  "JPEG is lossy and would change the result")
        reason += ", and drip-matte writes PNG or TIFF only"
    else:
        reason = "drip-matte writes PNG or TIFF only"
    return f"cannot write {what} to {path}: {reason}, so name it .png, .tif or .tiff"


def write(path: str, pixels: np.ndarray) -> None:
    """H x W (x C) uint8 / uint16 / float32 -> PNG or TIFF by the suffix. Float into a PNG is
    stored as 16 bits (the most a PNG holds); TIFF keeps every type as it is."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        if path.lower().endswith(TIFF_SUFFIXES):
            import tifffile
            photometric = "rgb" if pixels.ndim == 3 and pixels.shape[2] >= 3 else "minisblack"
            extra = {"extrasamples": ["unassalpha"]} if pixels.ndim == 3 and pixels.shape[2] == 4 else {}
            tifffile.imwrite(path, pixels, photometric=photometric, **extra)
        else:
            data = encode_png(pixels)
            with open(path, "wb") as f:
                f.write(data)
    except (OSError, ValueError) as exc:
        raise ImageFileError(f"cannot write {path}: {exc}") from None


def _read_pillow(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit comes next
            im = Image.open(path)
        with im:
            _check_size(path, *im.size)
            if im.mode == "F":
                return _float_samples(path, np.asarray(im, np.float32))
            if im.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(im).astype(np.uint16)
            if im.mode == "I":  # 32-bit integer grey: PNG 16-bit grey on some Pillow versions
                arr = np.asarray(im)
                return arr.astype(np.uint16) if arr.max(initial=0) > 255 else arr.astype(np.uint8)
            if im.mode in _AS_STORED and "transparency" not in im.info:
                # grey stays one channel (a trimap is not tripled into RGB and then checked for
                # colour) and colour is not copied by a convert to its own mode
                return np.asarray(im)
            transparent = "A" in im.mode or "transparency" in im.info  # palette / colour-key alpha too
            return np.asarray(im.convert("RGBA" if transparent else "RGB"))
    except UnidentifiedImageError:
        raise ImageFileError(f"not an image file: {path}") from None
    except Image.DecompressionBombError as exc:
        raise ImageFileError(f"{path} is too large: {exc}") from None


def _read_tiff(path: str) -> np.ndarray:
    import tifffile
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        shape = page.shape
        _check_size(path, shape[1] if len(shape) >= 2 else 0, shape[0])
        arr = page.asarray()
    if arr.dtype in (np.uint8, np.uint16):
        return arr
    if arr.dtype in (np.float16, np.float32, np.float64):
        return _float_samples(path, arr.astype(np.float32))
    raise ImageFileError(f"{path} has {arr.dtype} samples: 8-bit, 16-bit or float images are supported")


def _float_samples(path: str, arr: np.ndarray) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise ImageFileError(f"{path} contains NaN or infinite values")
    return arr


def _png_bit_depth(path: str) -> int | None:
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 26:
        return None
    return head[24]


def _read_png16(path: str) -> np.ndarray:
    import png
    width, height, rows, info = png.Reader(filename=path).asDirect()
    _check_size(path, width, height)
    planes = info["planes"]
    arr = np.vstack([np.asarray(row, np.uint16) for row in rows])
    return arr.reshape(height, width, planes)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes: 8-bit through Pillow, deeper through pypng at 16 bits (float is rounded)."""
    buf = io.BytesIO()
    if pixels.dtype == np.uint8:
        from PIL import Image
        Image.fromarray(pixels).save(buf, format="PNG", compress_type=PNG_STRATEGY)
        return buf.getvalue()
    import png
    if pixels.dtype != np.uint16:
        pixels = np.rint(np.clip(pixels, 0.0, 1.0) * 65535.0).astype(np.uint16)
    planes = 1 if pixels.ndim == 2 else pixels.shape[2]
    h, w = pixels.shape[:2]
    png.Writer(w, h, bitdepth=16, greyscale=planes <= 2,
               alpha=planes in (2, 4)).write(buf, pixels.reshape(h, w * planes))
    return buf.getvalue()


def _check_size(path: str, width: int, height: int) -> None:
    # checked from the file's header, before decoding
    if width * height > DEFAULT_MAX_PIXELS:
        raise ImageFileError(f"{path} is {width}x{height} = {width * height} pixels, more than the limit of "
                             f"{DEFAULT_MAX_PIXELS}: crop or scale it first")

"""The one owner of sample depths: the numpy type of each depth, its full scale, the conversions.

A job's pixels keep the layer's precision: 8-bit, 16-bit or 32-bit float samples (the wire
protocol's ``result_depth``). Engines see float32 in [0, 1]; results go back at the job's depth.
"""
from __future__ import annotations

import numpy as np

from .errors import EngineError

# depth (bits) -> sample type, little-endian as on the wire
DEPTH_TYPES = {8: np.dtype(np.uint8), 16: np.dtype("<u2"), 32: np.dtype("<f4")}
# sample type -> the value that means 1.0
FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def dtype_of(depth: int) -> np.dtype:
    """The sample type of a depth (8, 16 or 32 = float)."""
    return DEPTH_TYPES[depth]


def depth_of(array: np.ndarray) -> int:
    """The depth (8, 16 or 32) of an array's samples; big-endian input counts as its little-endian twin."""
    little = array.dtype.newbyteorder("<")
    for depth, dtype in DEPTH_TYPES.items():
        if little == dtype:
            return depth
    raise EngineError("bad_image", f"pixels must be uint8, uint16 or float32, not {array.dtype}")


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float32 samples -> float32 in [0, 1] (the engines' input)."""
    scale = FULL_SCALE.get(pixels.dtype)
    if scale is None:
        raise EngineError("bad_image", f"pixels must be uint8, uint16 or float32, not {pixels.dtype}")
    out = pixels.astype(np.float32)
    if scale != 1.0:
        out /= np.float32(scale)  # a division: exactly v / 255 or v / 65535, correctly rounded
    else:
        np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(out, 0.0, 1.0, out=out)  # HDR and negative values: the engines see [0, 1]
    return out


def from_float(values: np.ndarray, dtype) -> np.ndarray:
    """float values in [0, 1] -> samples of ``dtype`` (rounded to nearest; floats clipped)."""
    dtype = np.dtype(dtype)
    scale = FULL_SCALE[dtype]
    clipped = np.clip(values, 0.0, 1.0)
    if scale == 1.0:
        return clipped.astype(np.float32, copy=False)
    return np.rint(clipped * np.float32(scale)).astype(dtype)


def to_8bit(mask: np.ndarray) -> np.ndarray:
    """A uint8, uint16 or float (in [0, 1]) mask as uint8, rounded to nearest."""
    if mask.dtype == np.uint16:
        return ((mask.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(mask.dtype, np.floating):
        return np.round(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)  # clip first: no overflow
    return mask

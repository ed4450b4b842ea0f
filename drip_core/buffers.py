"""Raw protocol buffers <-> numpy arrays (the server's and the Python client's side).

Samples are little-endian: uint8, uint16 or float32 by the format's sample size
(drip_protocol.job.FORMATS). Decoding is a view of the received bytes, never a copy.
"""
from __future__ import annotations

import numpy as np

from drip_protocol import FORMATS, RESULT_DEPTHS

from .errors import EngineError

SAMPLE_TYPES = {1: np.dtype(np.uint8), 2: np.dtype("<u2"), 4: np.dtype("<f4")}
DEPTHS = {np.dtype(np.uint8): 8, np.dtype("<u2"): 16, np.dtype("<f4"): 32}


def to_array(data, fmt: str, width: int, height: int) -> np.ndarray:
    """Decode a raw buffer (a view, not a copy). Returns H x W x C (C=1 squeezed)."""
    channels, sample_bytes = FORMATS[fmt]
    expected = width * height * channels * sample_bytes
    if memoryview(data).nbytes != expected:
        raise EngineError("bad_image", f"{fmt} buffer holds {memoryview(data).nbytes} bytes, {width}x{height} needs {expected}")
    arr = np.frombuffer(data, dtype=SAMPLE_TYPES[sample_bytes]).reshape(height, width, channels)
    return arr[:, :, 0] if channels == 1 else arr


def depth_dtype(depth: int) -> np.dtype:
    """The sample type of a result depth (8, 16 or 32 = float)."""
    return SAMPLE_TYPES[FORMATS[RESULT_DEPTHS[depth][1]][1]]


def depth_of(array: np.ndarray) -> int:
    """The protocol depth of an array's samples (8, 16 or 32); the image format is f"rgb{...}"."""
    depth = DEPTHS.get(array.dtype.newbyteorder("<"))  # big-endian input is sent little-endian
    if depth is None:
        raise EngineError("bad_image", f"pixels must be uint8, uint16 or float32, not {array.dtype}")
    return depth


def to_bytes(array: np.ndarray) -> memoryview:
    """The wire bytes of an array (little-endian samples; no copy when it already is)."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return memoryview(little.reshape(-1).view(np.uint8))

"""Raw protocol buffers <-> numpy arrays (the server's and the Python client's side).

Samples are little-endian: uint8, uint16 or float32 by the format's sample size
(drip_protocol.job.FORMATS). Decoding is a view of the received bytes, never a copy.
"""
from __future__ import annotations

import numpy as np

from drip_protocol import FORMATS

from .errors import EngineError
from .samples import dtype_of


def to_array(data, fmt: str, width: int, height: int) -> np.ndarray:
    """Decode a raw buffer (a view, not a copy). Returns H x W x C (C=1 squeezed)."""
    channels, sample_bytes = FORMATS[fmt]
    expected = width * height * channels * sample_bytes
    if memoryview(data).nbytes != expected:
        raise EngineError("bad_image", f"{fmt} buffer holds {memoryview(data).nbytes} bytes, "
                                       f"{width}x{height} needs {expected}")
    arr = np.frombuffer(data, dtype=dtype_of(8 * sample_bytes)).reshape(height, width, channels)
    return arr[:, :, 0] if channels == 1 else arr


def to_bytes(array: np.ndarray) -> memoryview:
    """The wire bytes of an array (little-endian samples; no copy when it already is)."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return memoryview(little.reshape(-1).view(np.uint8))

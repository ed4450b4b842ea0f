"""Raw protocol buffers <-> numpy arrays (the server's and the Python client's side)."""
from __future__ import annotations

import numpy as np

from .engines.base import EngineError
from drip_protocol import FORMATS


def to_array(data, fmt: str, width: int, height: int) -> np.ndarray:
    """Decode a raw buffer; 16-bit samples are little-endian. Returns HxWxC (C=1 squeezed)."""
    channels, depth = FORMATS[fmt]
    dtype = np.dtype("<u2") if depth == 2 else np.uint8
    expected = width * height * channels * depth
    if memoryview(data).nbytes != expected:
        raise EngineError("bad_image", f"{fmt} buffer holds {memoryview(data).nbytes} bytes, {width}x{height} needs {expected}")
    arr = np.frombuffer(data, dtype=dtype).reshape(height, width, channels)
    return arr[:, :, 0] if channels == 1 else arr


def image_rgb8(data, fmt: str, width: int, height: int) -> np.ndarray:
    """Any image format -> uint8 HxWx3 (the engines' input). Alpha is dropped: the layer's own
    transparency is not part of the matting problem; the plug-in keeps it separately."""
    arr = to_array(data, fmt, width, height)[:, :, :3]
    if arr.dtype != np.uint8:
        arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.ascontiguousarray(arr)


def quantize(x: np.ndarray, depth: int) -> np.ndarray:
    scale = 65535.0 if depth == 16 else 255.0
    q = np.clip(np.rint(np.asarray(x, np.float32) * scale), 0, scale)
    return q.astype("<u2" if depth == 16 else np.uint8)


def result_buffers(image: np.ndarray, trimap: np.ndarray, roi, foreground: np.ndarray, alpha: np.ndarray,
                   depth: int) -> list[memoryview]:
    """Full-size foreground + alpha bytes from an engine result computed on ``roi`` only.

    Outside the ROI everything is known: alpha comes from the trimap and the foreground is
    the image itself (exact where alpha is 1, irrelevant where it is 0). Working in integers
    here keeps a 24-megapixel layer from being converted to floats for nothing.
    """
    if depth == 16:
        fg = image.astype("<u2") * 257
        full_alpha = np.where(trimap == 255, 65535, 0).astype("<u2")
    else:
        fg = image.copy()
        full_alpha = np.where(trimap == 255, 255, 0).astype(np.uint8)
    fg[roi] = quantize(foreground, depth)
    full_alpha[roi] = quantize(alpha, depth)
    return [memoryview(fg).cast("B"), memoryview(full_alpha).cast("B")]

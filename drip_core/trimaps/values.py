"""The one owner of trimap values: what 0, 128 and 255 mean, and turning masks into 8 bits.

A trimap is uint8, H x W: FOREGROUND where the object surely is, BACKGROUND where it surely is
not, UNKNOWN where the engine decides. The numbers are the wire protocol's (the server returns
the trimap it built), so they are defined there and named here for the rest of drip_core.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from drip_protocol import TRIMAP_BACKGROUND as BACKGROUND
from drip_protocol import TRIMAP_FOREGROUND as FOREGROUND
from drip_protocol import TRIMAP_UNKNOWN as UNKNOWN

from ..errors import EngineError
from ..samples import to_8bit

__all__ = ["BACKGROUND", "FOREGROUND", "UNKNOWN", "Regions", "as_mask", "check_shape", "snap", "split"]


class Regions(NamedTuple):
    """A trimap's three regions as boolean masks."""
    foreground: np.ndarray
    unknown: np.ndarray
    background: np.ndarray


def split(trimap: np.ndarray) -> Regions:
    """(foreground, unknown, background) masks of a trimap built here (values 0 / 128 / 255)."""
    return Regions(trimap == FOREGROUND, trimap == UNKNOWN, trimap == BACKGROUND)


def snap(grey: np.ndarray) -> np.ndarray:
    """A uint8 trimap that is not exactly 0 / 128 / 255 (resampled or JPEG'd) snapped to the nearest
    value: below 64 background, above 191 foreground, unknown between."""
    return np.where(grey < 64, BACKGROUND, np.where(grey > 191, FOREGROUND, UNKNOWN)).astype(np.uint8)


def as_mask(mask, name: str) -> np.ndarray:
    """A selection, feathered selection or painted trimap as 8-bit H x W (uint16 rounded, bool
    255 / 0, float in [0, 1] scaled); ``name`` says which in errors."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2 or mask.size == 0:
        raise EngineError("bad_trimap", f"{name} must be a non-empty 2-D array, got shape {mask.shape}")
    if mask.dtype == bool:
        return mask.astype(np.uint8) * 255
    if np.issubdtype(mask.dtype, np.floating) and not np.isfinite(mask).all():
        raise EngineError("bad_trimap", f"{name} contains NaN or infinite values")
    if mask.dtype != np.uint8 and mask.dtype != np.uint16 and not np.issubdtype(mask.dtype, np.floating):
        raise EngineError("bad_trimap", f"{name} must be uint8, uint16, bool or float, got {mask.dtype}")
    return to_8bit(mask)


def check_shape(mask: np.ndarray, shape) -> None:
    """A mask must have the image's size (``shape``: the image's, or None to skip the check)."""
    if shape is not None and tuple(mask.shape) != tuple(shape[:2]):
        raise EngineError("bad_trimap", f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                        f"{shape[1]}x{shape[0]}")

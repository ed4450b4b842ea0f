"""Build trimaps (uint8: 0 background, 128 unknown, 255 foreground) from what GIMP has.

Three sources, matching the plug-in's "trimap source" choices:
  * a selection mask and a band radius: the band around the selection edge is unknown;
  * a feathered selection: fully selected is foreground, unselected background, the rest unknown;
  * a painted trimap channel: pure white and pure black are known, anything else unknown.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from drip_protocol import AUTO_BAND, DEFAULT_BAND_RADIUS

from .errors import EngineError
from .region import BACKGROUND, FOREGROUND, UNKNOWN  # the trimap's three values, defined once


def _as_mask(mask, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2 or mask.size == 0:
        raise EngineError("bad_trimap", f"{name} must be a non-empty 2-D array, got shape {mask.shape}")
    if mask.dtype == np.uint16:
        mask = ((mask.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif mask.dtype == bool:
        mask = mask.astype(np.uint8) * 255
    elif np.issubdtype(mask.dtype, np.floating):
        if not np.isfinite(mask).all():
            raise EngineError("bad_trimap", f"{name} contains NaN or infinite values")
        mask = np.round(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)  # clip first: no overflow
    elif mask.dtype != np.uint8:
        raise EngineError("bad_trimap", f"{name} must be uint8, uint16, bool or float, got {mask.dtype}")
    return mask


def _check_shape(mask: np.ndarray, shape) -> None:
    if shape is not None and tuple(mask.shape) != tuple(shape[:2]):
        raise EngineError("bad_trimap", f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                        f"{shape[1]}x{shape[0]}")


def from_selection(selection, band_radius: int, shape=None) -> np.ndarray:
    """Selection (0..255, >= 128 counts as selected) + band radius in pixels -> trimap.

    Inside the selection eroded by the radius is foreground, outside the selection dilated
    by it is background, the band between is unknown. Distances are Euclidean, so the band
    is round at corners and its cost does not grow with the radius.
    """
    sel = _as_mask(selection, "selection")
    _check_shape(sel, shape)
    if not isinstance(band_radius, (int, np.integer)) or band_radius < 0:
        raise EngineError("bad_trimap", f"band radius must be a non-negative integer, got {band_radius!r}")
    inside = sel >= 128
    if not inside.any():
        raise EngineError("empty_selection", "the selection is empty")
    if inside.all():
        # Everything selected: there is no edge, hence no band and no background to anchor
        # one; the honest answer is "nothing to matte".
        return np.full(sel.shape, FOREGROUND, np.uint8)
    return _band_trimap(inside, band_radius)


BAND_TILE = 512  # px: distances are computed tile by tile, so memory follows a tile, not the layer


def _band_trimap(inside: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` of the selection edge are unknown, the rest keeps its side.

    Each tile is seen with a halo of radius + 1 pixels: a pixel's nearest pixel of the other
    side is then inside the halo whenever it is within the radius, so thresholding the
    halo's own distance transform is exact. Tiles whose halo holds one side only are
    skipped: that is every tile away from the edge, so the cost follows the edge's length.
    """
    h, w = inside.shape
    trimap = np.where(inside, np.uint8(FOREGROUND), np.uint8(BACKGROUND))  # uint8 throughout
    pad = radius + 1
    for y0 in range(0, h, BAND_TILE):
        for x0 in range(0, w, BAND_TILE):
            y1, x1 = min(y0 + BAND_TILE, h), min(x0 + BAND_TILE, w)
            hy0, hx0 = max(y0 - pad, 0), max(x0 - pad, 0)
            halo = inside[hy0:min(y1 + pad, h), hx0:min(x1 + pad, w)]
            if halo.all() or not halo.any():
                continue
            core = (slice(y0 - hy0, y1 - hy0), slice(x0 - hx0, x1 - hx0))
            sel = halo[core]
            near_outside = ndimage.distance_transform_edt(halo)[core] <= radius   # for selected pixels
            near_inside = ndimage.distance_transform_edt(~halo)[core] <= radius   # for the others
            band = np.where(sel, near_outside, near_inside)
            trimap[y0:y1, x0:x1][band] = UNKNOWN
    return trimap


def from_feathered(selection, shape=None) -> np.ndarray:
    """Feathered selection: 255 -> foreground, 0 -> background, anything between -> unknown."""
    sel = _as_mask(selection, "selection")
    _check_shape(sel, shape)
    if not (sel > 0).any():
        raise EngineError("empty_selection", "the selection is empty")
    trimap = np.full(sel.shape, UNKNOWN, np.uint8)
    trimap[sel == 255] = FOREGROUND
    trimap[sel == 0] = BACKGROUND
    return trimap


def from_painted(channel, shape=None) -> np.ndarray:
    """A hand-painted trimap: pure white (255) = foreground, pure black (0) = background and
    *anything else* = unknown, so soft brush edges and strokes with gaps mean "unsure", never
    "foreground". Masks deeper than 8 bits are first rounded to 8 bits."""
    ch = _as_mask(channel, "trimap")
    _check_shape(ch, shape)
    trimap = np.full(ch.shape, UNKNOWN, np.uint8)
    trimap[ch == 0] = BACKGROUND
    trimap[ch == 255] = FOREGROUND
    return trimap


def build(source: str, mask, band_radius=DEFAULT_BAND_RADIUS, shape=None, image=None) -> np.ndarray:
    """Dispatch on the protocol's ``trimap_source`` names; for a selection band, ``band_radius``
    is a number of pixels or "auto" (the smart band, which needs the ``image``)."""
    if source == "selection_band":
        if band_radius == AUTO_BAND:
            if image is None:
                raise EngineError("bad_request", "the smart band needs the image")
            from .smart_band import smart_trimap  # scipy-heavy: loaded when used
            return smart_trimap(image, mask, shape=shape)
        return from_selection(mask, band_radius, shape)
    if source == "feathered":
        return from_feathered(mask, shape)
    if source == "trimap":
        return from_painted(mask, shape)
    raise EngineError("bad_request", f"unknown trimap source '{source}'")

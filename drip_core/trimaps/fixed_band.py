"""A fixed band: the selection's edge widened by a radius in pixels is unknown."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import EngineError
from .values import BACKGROUND, FOREGROUND, UNKNOWN, as_mask, check_shape


def from_selection(selection, band_radius: int, shape=None) -> np.ndarray:
    """Selection (0..255, >= 128 counts as selected) + band radius in pixels -> trimap.

    Inside the selection eroded by the radius is foreground, outside the selection dilated
    by it is background, the band between is unknown. Distances are Euclidean, so the band
    is round at corners and its cost does not grow with the radius.
    """
    sel = as_mask(selection, "selection")
    check_shape(sel, shape)
    if not isinstance(band_radius, (int, np.integer)) or band_radius < 0:
        raise EngineError("bad_trimap", f"band radius must be a non-negative integer, got {band_radius!r}",
                          hint="")
    inside = sel >= 128
    if not inside.any():
        raise EngineError("empty_selection", "nothing is selected")
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

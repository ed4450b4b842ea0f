"""The region of interest of a matting job: the unknown region's bounding box plus a margin.

Everything outside it is already known from the trimap, so engines (and the server) only
spend time and memory there.
"""
from __future__ import annotations

import numpy as np


def unknown_bbox(trimap: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """(rows, cols) slices around every unknown (128) pixel, widened by ``margin``; None if none."""
    return mask_bbox(trimap == 128, margin)


def mask_bbox(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """Bounding box of the non-zero pixels of ``mask`` widened by ``margin``; None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    h, w = mask.shape
    return (slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, h)),
            slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, w)))

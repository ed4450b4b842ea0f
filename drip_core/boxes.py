"""Rectangles of an image as (rows, cols) slices: bounding boxes, widening, overlaps."""
from __future__ import annotations

import numpy as np

Box = tuple[slice, slice]


def mask_bbox(mask: np.ndarray, margin: int) -> Box | None:
    """Bounding box of the non-zero pixels of ``mask`` widened by ``margin``; None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    return widen((slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)),
                 margin, mask.shape)


def widen(box: Box, margin: int, shape) -> Box:
    """``box`` grown by ``margin`` on every side, clipped to an image of ``shape``."""
    rows, cols = box
    return (slice(max(rows.start - margin, 0), min(rows.stop + margin, shape[0])),
            slice(max(cols.start - margin, 0), min(cols.stop + margin, shape[1])))


def width(box: Box, axis: int) -> int:
    return box[axis].stop - box[axis].start


def area(box: Box) -> int:
    return width(box, 0) * width(box, 1)


def intersect(a: Box, b: Box) -> Box | None:
    r0, r1 = max(a[0].start, b[0].start), min(a[0].stop, b[0].stop)
    c0, c1 = max(a[1].start, b[1].start), min(a[1].stop, b[1].stop)
    return (slice(r0, r1), slice(c0, c1)) if r0 < r1 and c0 < c1 else None


def hull(a: Box, b: Box) -> Box:
    return (slice(min(a[0].start, b[0].start), max(a[0].stop, b[0].stop)),
            slice(min(a[1].start, b[1].start), max(a[1].stop, b[1].stop)))


def relative(inner: Box, outer: Box) -> Box:
    """``inner`` in the coordinates of ``outer`` (which contains it)."""
    return (slice(inner[0].start - outer[0].start, inner[0].stop - outer[0].start),
            slice(inner[1].start - outer[1].start, inner[1].stop - outer[1].start))

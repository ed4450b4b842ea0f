"""Integer-factor block reductions: the smart band's working resolution and the classical
engine's coarse solve (engines/coarse_to_fine.py) reduce images and trimaps the same way."""
from __future__ import annotations

import numpy as np

from drip_protocol import TRIMAP_BACKGROUND, TRIMAP_FOREGROUND, TRIMAP_UNKNOWN


def _block_sum(x: np.ndarray, f: int, axis: int) -> np.ndarray:
    """Sums of f consecutive entries along ``axis`` (0 or 1; the last group may be shorter)."""
    n = x.shape[axis]
    out = np.zeros(x.shape[:axis] + (-(-n // f),) + x.shape[axis + 1:], np.float32)
    for d in range(f):  # f strided adds: along rows each reads whole contiguous rows
        part = x[d::f] if axis == 0 else x[:, d::f]
        if axis == 0:
            out[:part.shape[0]] += part
        else:
            out[:, :part.shape[1]] += part
    return out


def reduce_image(image: np.ndarray, f: int) -> np.ndarray:
    """Box mean over f x f blocks, float32 (the last, partial blocks average what they hold);
    f = 1: the image itself as float32 (no copy when it is one already)."""
    if f == 1:
        return np.asarray(image, np.float32)
    h, w = image.shape[:2]
    total = _block_sum(_block_sum(image, f, 0), f, 1)  # rows first: the column pass reads 1/f of the data
    rows = np.minimum(f, h - np.arange(0, h, f))
    cols = np.minimum(f, w - np.arange(0, w, f))
    total /= np.outer(rows, cols).astype(np.float32).reshape((len(rows), len(cols)) + (1,) * (image.ndim - 2))
    return total


def whole_blocks(mask: np.ndarray, f: int) -> np.ndarray:
    """Per f x f block (the last ones partial): whether all of its pixels are in ``mask``."""
    h, w = mask.shape
    return np.logical_and.reduceat(np.logical_and.reduceat(mask, np.arange(0, h, f), axis=0),
                                   np.arange(0, w, f), axis=1)


def any_blocks(mask: np.ndarray, f: int) -> np.ndarray:
    """Per f x f block (the last ones partial): whether any of its pixels is in ``mask``."""
    h, w = mask.shape
    return np.logical_or.reduceat(np.logical_or.reduceat(mask, np.arange(0, h, f), axis=0),
                                  np.arange(0, w, f), axis=1)


def expand_blocks(blocks: np.ndarray, f: int, shape) -> np.ndarray:
    """Each value of a 1/f-size array repeated over its f x f block, cut to ``shape`` (rows,
    columns); f = 1: a copy."""
    if f == 1:
        return blocks.copy()
    return np.repeat(np.repeat(blocks, f, axis=0), f, axis=1)[:shape[0], :shape[1]]


def reduce_trimap(trimap: np.ndarray, f: int) -> np.ndarray:
    """A coarse pixel is foreground (background) only when its whole block is; else unknown."""
    fg, bg = whole_blocks(trimap == TRIMAP_FOREGROUND, f), whole_blocks(trimap == TRIMAP_BACKGROUND, f)
    out = np.full(fg.shape, TRIMAP_UNKNOWN, np.uint8)
    out[fg] = TRIMAP_FOREGROUND
    out[bg] = TRIMAP_BACKGROUND
    return out

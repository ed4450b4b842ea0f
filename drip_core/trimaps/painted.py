"""A painted trimap channel: pure white and pure black are known, anything else unknown."""
from __future__ import annotations

import numpy as np

from .values import BACKGROUND, FOREGROUND, UNKNOWN, as_mask, check_shape


def from_painted(channel, shape=None) -> np.ndarray:
    """A hand-painted trimap: pure white (255) = foreground, pure black (0) = background and
    *anything else* = unknown, so soft brush edges and strokes with gaps mean "unsure", never
    "foreground". Masks deeper than 8 bits are first rounded to 8 bits."""
    ch = as_mask(channel, "trimap")
    check_shape(ch, shape)
    trimap = np.full(ch.shape, UNKNOWN, np.uint8)
    trimap[ch == 0] = BACKGROUND
    trimap[ch == 255] = FOREGROUND
    return trimap

"""A feathered selection: fully selected is foreground, unselected background, the rest unknown."""
from __future__ import annotations

import numpy as np

from ..errors import EngineError
from .values import BACKGROUND, FOREGROUND, UNKNOWN, as_mask, check_shape


def from_feathered(selection, shape=None) -> np.ndarray:
    """Feathered selection: 255 -> foreground, 0 -> background, anything between -> unknown."""
    sel = as_mask(selection, "selection")
    check_shape(sel, shape)
    if not (sel > 0).any():
        raise EngineError("empty_selection", "nothing is selected")
    trimap = np.full(sel.shape, UNKNOWN, np.uint8)
    trimap[sel == 255] = FOREGROUND
    trimap[sel == 0] = BACKGROUND
    return trimap

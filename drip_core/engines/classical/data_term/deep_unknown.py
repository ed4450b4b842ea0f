"""Deep unknown pixels: patch-based trimming decides them even where the K-to-U flow disagrees.

A user who paints a large area grey (GT24's tuft, a 154 x 194 px box with no definite
pixel inside) leaves pixels up to 100 px from any known one.  There the K-to-U flow's neighbours
are the spatially nearest known pixels, far away and of other colours (its feature space weighs
position 10 / crop width per px: 100 px outweigh any colour difference), so its alpha_hat is
unreliable, often confidently wrong where fur and curtain share colours.  The trimming gate
(priors.mark_agreeing: a decision is kept only where alpha_hat agrees) then throws away the
patch evidence that would tell curtain from fur (smooth against textured), and the closed form
fills the box with haze: a semi-transparent curtain, a semi-transparent top of the head.

So for the unknown pixels with no known pixel within FAR px (Chebyshev) the gate is open: their
trimming decision (trimming.py: the own side's known patch near, the other side's far) is kept
whatever alpha_hat says.  Such a decision pins alpha hard, and in translucent hair a few
scattered wrong ones drag whole strands (in the expert trimaps' wide bands), while the decisions that
matter in a painted region come in clusters (a stretch of curtain, of fur): an opened decision is
kept only where at least DENSITY of its WINDOW x WINDOW neighbourhood has the same label (known,
trimmed or opened).

Only the trimming gate changes: the flow, its data term and the other pixels are as before.
(Deciding the deep pixels first, so that the flow sees them as known, cascades into the expert
trimaps' hair.)  FAR, WINDOW and DENSITY were chosen on the tuft's
3 seeds against the expert trimaps' most sensitive photos; the figures are in docs/lab-notes.md,
"GT24's tuft painted grey".  Crops solved in tiles trim the whole crop once with this rule too
(classical._trim_whole).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from ....trimaps.values import UNKNOWN
from . import trimming
from .information_flow import near_unknown

FAR = 24         # px: unknown pixels with no known pixel this close (Chebyshev) are "deep"
WINDOW = 7       # px: the neighbourhood an opened decision must share its label with ...
DENSITY = 0.15   # ... in at least this fraction of its pixels


def deep_pixels(unknown: np.ndarray, far: int = FAR) -> np.ndarray:
    """The unknown pixels with no known pixel within ``far`` px (Chebyshev distance, as the flow's
    and trimming's bands: a max filter of bytes, no crop-sized distance map)."""
    return unknown & ~near_unknown(~unknown, far)


def trim(image: np.ndarray, trimap: np.ndarray, may_be_fg: np.ndarray, may_be_bg: np.ndarray,
         far: int = FAR, window: int = WINDOW, density: float = DENSITY,
         patches: trimming.NearUnknown | None = None) -> tuple[np.ndarray, int]:
    """(trimmed trimap, deep decisions kept): trimming.trim with ``may_be_fg`` / ``may_be_bg``
    (the flow's gate, bool H x W) opened on the deep pixels, then the opened decisions that
    stand alone dropped (see the module docstring).  Without deep pixels: trimming.trim as is.
    ``patches``: as trimming.trim's."""
    deep = deep_pixels(trimap == UNKNOWN, far)
    if not deep.any():
        return trimming.trim(image, trimap, may_be_fg, may_be_bg, patches=patches), 0
    out = trimming.trim(image, trimap, may_be_fg | deep, may_be_bg | deep, patches=patches)
    kept = 0
    for label, gated in ((255, may_be_fg), (0, may_be_bg)):
        same = out == label
        opened = same & deep & ~gated  # decided only because the gate was open
        alone = opened & (uniform_filter(same.astype(np.float32), window) < density)
        out[alone] = UNKNOWN
        kept += int(np.count_nonzero(opened & ~alone))
    return out, kept

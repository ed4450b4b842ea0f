"""Objects that are all fine structure: a trimap with unknown and background but no definite foreground.

A wire spring, a cobweb, a sprig of grass: a band around it leaves no pixel the person can
call surely foreground, and the closed-form energy with background constraints alone is
minimised by alpha 0 everywhere. The colour-line model (Levin et al. 2008) still holds: in
every small window alpha is an affine function of the colour, so one set of foreground
constraints anywhere on the structure is enough to propagate along it. They come from the
background's own colours: the unknown pixels least like the background near them are the
structure at its most opaque (a mix alpha F + (1 - alpha) B lies alpha |F - B| from B), and the
pixels within DISTINCT of the most distinct one are taken as foreground. The rest of the
engine runs as for any trimap, and the result says how its foreground was obtained.

When nothing in the unknown region stands out from the background there is nothing to
propagate from and the engine refuses, as before: when the most distinct pixel is closer than
MIN_SEPARATION to the background, or than STAND_OUT times the background's own spread (the same
distance measured for known background pixels against the other background pixels: on a
textured or noisy background every pixel is far from its neighbours' colours).
"""
from __future__ import annotations

import numpy as np

from ...trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN
from .data_term.information_flow import BAND, STRIDE, distance_to_side, near_unknown

DISTINCT = 0.8          # seeds: at least this share of the most distinct pixel's colour distance
MIN_SEPARATION = 0.12   # RGB distance (0..sqrt(3)) the most distinct pixel needs from the background
TOP_QUANTILE = 0.999    # "the most distinct pixel": this quantile, so a few odd pixels do not decide
STAND_OUT = 2.0         # ... and at least this many times the background's own spread
SPREAD_SAMPLE = 20_000  # background pixels the spread is measured on


def background_distance(image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices of the unknown pixels, each one's colour distance to the background near it:
    information_flow.distance_to_side)."""
    idx = np.flatnonzero(trimap == UNKNOWN)
    colours = np.asarray(image).reshape(-1, 3)[idx]
    return idx, distance_to_side(image, trimap == BACKGROUND, idx, colours)


def background_spread(image: np.ndarray, trimap: np.ndarray) -> float:
    """How far known background pixels near the unknown region lie from the other background
    pixels near them (the TOP_QUANTILE of background_distance's measure, on background pixels off
    the grid the search samples, so that none finds itself)."""
    background = trimap == BACKGROUND
    off_grid = background & near_unknown(trimap == UNKNOWN, BAND)
    off_grid[::STRIDE, ::STRIDE] = False
    idx = np.flatnonzero(off_grid)
    if idx.size == 0:
        return 0.0
    idx = idx[np.linspace(0, idx.size - 1, min(idx.size, SPREAD_SAMPLE)).astype(np.intp)]
    distance = distance_to_side(image, background, idx, np.asarray(image).reshape(-1, 3)[idx])
    distance = distance[np.isfinite(distance)]
    return float(np.quantile(distance, TOP_QUANTILE)) if distance.size else 0.0


def provisional_foreground(image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, int] | None:
    """(the trimap with the unknown pixels least like the background made foreground, how many),
    or None when no unknown pixel stands out from the background."""
    idx, distance = background_distance(image, trimap)
    if idx.size == 0:
        return None
    top = float(np.quantile(distance, TOP_QUANTILE))
    if top < MIN_SEPARATION or top < STAND_OUT * background_spread(image, trimap):
        return None
    seeds = idx[distance >= DISTINCT * top]
    out = trimap.copy()
    out.reshape(-1)[seeds] = FOREGROUND
    return out, int(seeds.size)


def note(count: int) -> str:
    return (f"the trimap marks no definite foreground: the {count} unknown pixels least like the "
            f"background were taken as foreground (an object that is all fine structure); paint "
            f"white on the trimap where the object surely is for a result that does not guess")

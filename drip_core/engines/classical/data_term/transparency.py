"""Transparency check: is the unknown region explained by the nearby known colours?

For an opaque object with a fuzzy or thin boundary most unknown pixels are pure
foreground or pure background colours, so the unknown region's colour histogram is close
to a mix  beta h_F + (1 - beta) h_B  of the histograms of the known foreground and
background next to it.  Behind a highly transparent object (glass, smoke, a veil) the
unknown pixels are mixtures of the two, colours that neither known side has, and the
histogram is poorly explained.  There the known-to-unknown prior (which assumes each
unknown pixel resembles known pixels) hurts, and the engine falls back to the plain
closed form (Aksoy et al., CVPR 2017, use a test of this kind to switch the K-to-U term off).

score = the share of the unknown region's colours that the best mix  beta h_F + (1 - beta) h_B
does not explain (0: fully explained, 1: no overlap at all; without the rule below, half the
L1 distance between h_U and the mix), histograms over BINS^3 colour cells, known pixels within
``band`` of the unknown region. Colours in a cell that no known pixel has but a neighbouring
cell does count as explained: a background that changes across the picture (a gradient, a
blurred room) puts the unknown region's background colours one cell away from those of the few
known pixels near it, and counting them switched the data term off for an opaque object,
leaving the plain closed form to fill the unknown region between the object and the picture's
border with a haze of mid alpha. A veil's mixes lie cells away from both sides' colours, and
dense hair's mixes, which the known pixels near it have too, in other proportions, still count.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter

from ....trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN
from .information_flow import near_unknown

BINS = 8          # per channel
BAND = 32
THRESHOLD = 0.5   # score above this: treat the unknown region as highly transparent


def _histogram(image: np.ndarray, mask: np.ndarray, bins: int) -> np.ndarray:
    q = np.minimum((image[mask] * bins).astype(np.int64), bins - 1)
    cell = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    h = np.bincount(cell, minlength=bins ** 3).astype(np.float64)
    return h / max(h.sum(), 1.0)


def mix_fit(h_u: np.ndarray, h_f: np.ndarray, h_b: np.ndarray) -> tuple[float, float]:
    """(beta, score): beta in [0, 1] minimising |h_u - beta h_f - (1 - beta) h_b|^2 and
    score = |h_u - mix|_1 / 2 for that beta."""
    d = h_f - h_b
    dd = float(d @ d)
    beta = 0.5 if dd == 0 else float(np.clip((h_u - h_b) @ d / dd, 0.0, 1.0))
    return beta, 0.5 * float(np.abs(h_u - h_b - beta * d).sum())


def transparency_score(image: np.ndarray, trimap: np.ndarray, band: int = BAND, bins: int = BINS) -> float:
    """How poorly the unknown region's colours are explained by the known ones near it
    (``image`` float in [0, 1], ``trimap`` uint8 0 / 128 / 255); 1.0 when a side is missing."""
    unknown = trimap == UNKNOWN
    near = near_unknown(unknown, band)
    fg, bg = (trimap == FOREGROUND) & near, (trimap == BACKGROUND) & near
    if not unknown.any() or not fg.any() or not bg.any():
        return 1.0
    # float32 bins exactly as float64 would (x 8 is exact): no crop-sized double copy
    h_u, h_f, h_b = (_histogram(image, m, bins) for m in (unknown, fg, bg))
    beta, _ = mix_fit(h_u, h_f, h_b)
    unexplained = np.maximum(h_u - beta * h_f - (1 - beta) * h_b, 0)  # sums to the L1 score
    known = (h_f + h_b).reshape(bins, bins, bins) > 0
    next_to_known = (maximum_filter(known, size=3, mode="constant") & ~known).reshape(-1)
    return float(unexplained[~next_to_known].sum())


def is_transparent(image: np.ndarray, trimap: np.ndarray, threshold: float = THRESHOLD, **kw) -> bool:
    return transparency_score(image, trimap, **kw) > threshold

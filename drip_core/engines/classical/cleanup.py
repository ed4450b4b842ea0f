"""Part-transparent specks not connected to the object, where its colours match the background's.

Where the foreground and background colours match (a white chest against a white wall), the
colour-line model cannot tell them apart: any alpha explains the pixel, and the closed form
follows the smallest colour differences (noise) into a dust of part-transparent pixels, often
islands in the background with no alpha leading back to the object. The data term cannot help
there either (both sides' colours are the same). This is the method's own limit, so it is
handled after the solve, by one rule: a connected group of pixels with alpha above SPECK that
does not touch the trimap's definite foreground (nor a strand joined to it: the group would then
touch it), whose colours are foreground colours too (the closest of the nearby definite
foreground's colours within MATCH: information_flow.distance_to_side), is dust, and its alpha
becomes 0, unless

- it is a strand: at least STRAND_LENGTH px long and at most STRAND_WIDTH px wide on average
  (the tip of a hair beyond a faint stretch is such a group), or
- somewhere in it alpha reaches OPAQUE: a piece of the object in its own right.

The colour condition keeps the faint detached wisps of hair in front of a background of
another colour (the alphamatting.com photos have dozens, mostly real: their colours are the
background's, far from the hair's). Only unknown pixels change; groups are 8-connected.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ...trimaps.values import FOREGROUND, UNKNOWN
from .data_term.information_flow import distance_to_side

SPECK = 0.05          # alpha above this is something, below it background
MATCH = 0.1           # RGB distance within which a colour is a foreground colour too
OPAQUE = 0.7          # a group reaching this alpha anywhere is kept
STRAND_LENGTH = 6.0   # px: a group this long ...
STRAND_WIDTH = 2.5    # ... and at most this wide on average is a strand, kept
_EIGHT = np.ones((3, 3), bool)


def _strand_like(ys: np.ndarray, xs: np.ndarray, group: np.ndarray, count: int) -> np.ndarray:
    """Per group 0..count, from its pixels (ys, xs) labelled ``group``: whether it is long and
    thin, from its second moments (length = sqrt(12 x the largest variance), the extent of a
    uniform segment; mean width = area / length)."""
    area = np.bincount(group, minlength=count + 1).astype(np.float64)
    safe = np.maximum(area, 1)

    def mean(v):
        return np.bincount(group, weights=v, minlength=count + 1) / safe

    ys, xs = ys.astype(np.float64), xs.astype(np.float64)
    my, mx = mean(ys), mean(xs)
    vyy, vxx, vxy = mean(ys * ys) - my ** 2, mean(xs * xs) - mx ** 2, mean(ys * xs) - my * mx
    largest = (vyy + vxx) / 2 + np.sqrt(((vyy - vxx) / 2) ** 2 + vxy ** 2)
    length = np.sqrt(12 * np.maximum(largest, 0) + 1)  # + 1: a single pixel is 1 px long
    return (length >= STRAND_LENGTH) & (area / length <= STRAND_WIDTH)


def _touching_foreground(trimap: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Per pixel (ys, xs): whether one of its 8 neighbours is definite foreground."""
    h, w = trimap.shape
    out = np.zeros(ys.size, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            y, x = ys + dy, xs + dx
            inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            out[inside] |= trimap[y[inside], x[inside]] == FOREGROUND
    return out


def detached_specks(alpha: np.ndarray, trimap: np.ndarray, image: np.ndarray,
                    unknown_colours: np.ndarray) -> np.ndarray:
    """The unknown pixels (bool H x W) of the groups of alpha > SPECK that are dust (module
    docstring). ``trimap``: the trimap solved with (its foreground is the object); ``image``: the
    crop, read at its known pixels; ``unknown_colours``: the unknown pixels' own colours (n x 3,
    in flat order: the solve writes the foreground over them in ``image``). Groups are made of
    unknown pixels (known background has alpha 0, definite foreground is the object): beyond one
    labelling only those pixels are looked at, a thin band in a 27-MP crop."""
    out = np.zeros(alpha.shape, bool)
    unknown_idx = np.flatnonzero(trimap == UNKNOWN)
    some = alpha.reshape(-1)[unknown_idx] > SPECK
    pixels, colours = unknown_idx[some], unknown_colours[some]
    out.reshape(-1)[pixels] = True
    labels, count = ndimage.label(out, _EIGHT)
    out.reshape(-1)[pixels] = False
    group = labels.reshape(-1)[pixels]
    del labels
    ys, xs = np.divmod(pixels, alpha.shape[1])
    keep = np.zeros(count + 1, bool)
    keep[group[_touching_foreground(trimap, ys, xs)]] = True
    peak = np.zeros(count + 1, np.float32)
    np.maximum.at(peak, group, alpha.reshape(-1)[pixels])
    keep |= (peak >= OPAQUE) | _strand_like(ys, xs, group, count)
    left = ~keep[group]
    if left.any():
        distance = distance_to_side(image, trimap == FOREGROUND, pixels[left], colours[left])
        # a group is kept unless most of its pixels have a foreground colour within MATCH
        like = np.bincount(group[left], weights=distance < MATCH, minlength=count + 1)
        keep |= like <= 0.5 * np.bincount(group[left], minlength=count + 1)
        out.reshape(-1)[pixels[~keep[group]]] = True
    return out


def unknown_colours(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """The unknown pixels' own colours (n x 3, flat order): what ``detached_specks`` needs, taken
    before a solve writes the foreground over them."""
    return image.reshape(-1, 3)[np.flatnonzero(trimap == UNKNOWN)]


def remove_specks(alpha: np.ndarray, trimap: np.ndarray, image: np.ndarray,
                  unknown_colours: np.ndarray) -> int:
    """Sets the dust's alpha (``detached_specks``) to 0 in place; returns how many pixels."""
    dust = detached_specks(alpha, trimap, image, unknown_colours)
    alpha[dust] = 0
    return int(np.count_nonzero(dust))

"""Where a whole-image alpha error lies: split by the trimap's regions and the truth.

A rough lasso's error can sit in three places, and each needs a different fix:

* definite foreground (or background) that the truth says is not: the trimap is wrong there
  (the smart band's job, or a user's stroke);
* unknown pixels whose truth is pure background or foreground: the engine decided them wrongly;
* unknown pixels whose truth is mixed: the engine's matting of real transitions.

The signed error of the mixed pixels, by their distance to definite background, tells whether
the engine leans one way where the background it can learn from is far away.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN
from .metrics import to_uint8

SOLID = 250                     # truth at least this (of 255) counts as solid foreground
DISTANCE_BINS = (0, 10, 20, 40, np.inf)   # px to definite background, for the signed mixed error


def error_breakdown(alpha: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """Whole-image SAD / 1000 of ``alpha`` (float in [0, 1]) against ``gt`` (uint8) split by
    ``trimap`` (uint8 0 / 128 / 255): ``known_fg``, ``known_bg``, ``unknown`` (= ``unknown_bg``
    + ``unknown_fg`` + ``unknown_mixed`` by the truth), and for the mixed unknown pixels the
    error above (``over_<a>_<b>``) and below (``under_<a>_<b>``) the truth, by distance in px
    to definite background. The parts add up to ``sad``."""
    signed = (to_uint8(alpha).astype(np.float64) - np.asarray(gt, np.float64)) / 255.0 / 1000.0
    error = np.abs(signed)
    unknown = trimap == UNKNOWN
    mixed = unknown & (gt > 0) & (gt < 255)
    out = {"sad": float(error.sum()),
           "known_fg": float(error[trimap == FOREGROUND].sum()),
           "known_bg": float(error[trimap == BACKGROUND].sum()),
           "unknown": float(error[unknown].sum()),
           "unknown_bg": float(error[unknown & (gt == 0)].sum()),
           "unknown_fg": float(error[unknown & (gt == 255)].sum()),
           "unknown_mixed": float(error[mixed].sum())}
    to_bg = ndimage.distance_transform_edt(trimap != BACKGROUND)
    for near, far in zip(DISTANCE_BINS[:-1], DISTANCE_BINS[1:]):
        part = signed[mixed & (to_bg > near) & (to_bg <= far)]
        name = f"{near}_{far if np.isfinite(far) else 'inf'}"
        out[f"over_{name}"] = float(part[part > 0].sum())
        out[f"under_{name}"] = float(-part[part < 0].sum())
    return out


def with_true_foreground(trimap: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """The trimap with every definite-foreground pixel that is not solid in the truth made unknown:
    what the engine would give if the trimap's foreground were never wrong (an oracle, for
    measuring how much of an error the definite foreground causes, directly and by teaching the
    engine the wrong colours)."""
    out = np.array(trimap, copy=True)
    out[(out == FOREGROUND) & (np.asarray(gt) < SOLID)] = UNKNOWN
    return out

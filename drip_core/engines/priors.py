"""The classical engine's v2 additions to the closed-form energy, in one call.

    transparency check -> (opaque) K-to-U flow -> patch-based trimming on the flow's neighbours
                       -> (transparent) nothing: plain closed form

Returns what ``closed_form_alpha`` needs: the trimap to solve with (trimmed pixels become
known), and the K-to-U data term (weight sigma * eta, target alpha_hat clipped to [0, 1])
for the pixels that stay unknown.  ``image`` is the crop as float in [0, 1], ``trimap`` its
uint8 0 / 128 / 255 trimap.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import information_flow, transparency, trimming

SIGMA = 0.15  # weight of the K-to-U term against Levin's (unnormalised) matting Laplacian


@dataclass
class AlphaPriors:
    trimap: np.ndarray                 # trimap to solve with (the input, plus trimmed pixels)
    weight: np.ndarray | None = None   # H x W data-term weight (0 outside the unknown region)
    alpha: np.ndarray | None = None    # H x W data-term target
    flow: information_flow.Flow | None = None
    transparent: bool = False
    trimmed: int = 0                   # unknown pixels that trimming made known
    seconds: dict = field(default_factory=dict)


def alpha_priors(image: np.ndarray, trimap: np.ndarray, sigma: float = SIGMA, trim: bool = True,
                 transparency_threshold: float = transparency.THRESHOLD) -> AlphaPriors:
    out = AlphaPriors(trimap)
    if sigma <= 0 and not trim:
        return out
    t0 = time.perf_counter()
    out.transparent = transparency.transparency_score(image, trimap) > transparency_threshold
    t1 = time.perf_counter()
    out.seconds["transparency"] = t1 - t0
    if out.transparent:
        return out
    flow = information_flow.known_to_unknown(image, trimap)
    t2 = time.perf_counter()
    out.seconds["flow"] = t2 - t1
    if flow is None:  # no known foreground or background near the unknown region
        return out
    out.flow = flow
    if trim:
        label = trimming.decide(*trimming.neighbour_distances(image, flow.idx, flow.nf, flow.nb))
        if (label >= 0).any():
            solve = trimap.copy()
            flat = solve.reshape(-1)
            flat[flow.idx[label == 1]] = 255
            flat[flow.idx[label == 0]] = 0
            out.trimap = solve
            out.trimmed = int((label >= 0).sum())
        out.seconds["trim"] = time.perf_counter() - t2
    if sigma > 0:
        out.weight = np.zeros(trimap.shape)
        out.alpha = np.zeros(trimap.shape)
        out.weight.flat[flow.idx] = sigma * flow.eta
        out.alpha.flat[flow.idx] = np.clip(flow.alpha_hat, 0.0, 1.0)
    return out

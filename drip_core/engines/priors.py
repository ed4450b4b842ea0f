"""The classical engine's v2 additions to the closed-form energy, in one call.

    transparency check -> (opaque) patch-based trimming -> K-to-U flow of the pixels left unknown
                       -> (transparent) nothing: plain closed form

Returns what ``closed_form_alpha`` needs: the trimap to solve with (trimmed pixels become
known), and the K-to-U data term for the pixels that stay unknown: target alpha_hat clipped
to [0, 1], weight sigma * eta * exp(-(R / tau)^2) with R the mixture residual
(information_flow.mixture_residual: alpha_hat is not trusted where the pixel's colour is no
mix of its flows' colours).  ``image`` is the crop as float in [0, 1], ``trimap`` its
uint8 0 / 128 / 255 trimap.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import information_flow, transparency, trimming

SIGMA = 0.05  # weight of the K-to-U term against Levin's (unnormalised) matting Laplacian
TAU = 0.1     # mixture-residual scale of the per-pixel confidence
FG_PRIOR = 0.01  # weight of the flows' colours in the foreground stage (exact composites: SAD 1.975 -> 1.938)


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
                 transparency_threshold: float = transparency.THRESHOLD, tau: float = TAU) -> AlphaPriors:
    out = AlphaPriors(trimap)
    if sigma <= 0 and not trim:
        return out
    t0 = time.perf_counter()
    out.transparent = transparency.transparency_score(image, trimap) > transparency_threshold
    t1 = time.perf_counter()
    out.seconds["transparency"] = t1 - t0
    if out.transparent:
        return out
    if trim:
        solve = trimming.trim(image, trimap)
        out.trimmed = int(np.count_nonzero(solve != trimap))
        if out.trimmed:
            out.trimap = solve
        t2 = time.perf_counter()
        out.seconds["trim"] = t2 - t1
        t1 = t2
    if sigma <= 0 or not (out.trimap == 128).any():
        return out
    flow = information_flow.known_to_unknown(image, out.trimap)
    out.seconds["flow"] = time.perf_counter() - t1
    if flow is None:  # no known foreground or background near the unknown region
        return out
    out.flow = flow
    conf = np.exp(-(information_flow.mixture_residual(image, flow) / tau) ** 2) if tau > 0 else 1.0
    out.weight = np.zeros(trimap.shape)
    out.alpha = np.zeros(trimap.shape)
    out.weight.flat[flow.idx] = sigma * flow.eta * conf
    out.alpha.flat[flow.idx] = np.clip(flow.alpha_hat, 0.0, 1.0)
    return out


def foreground_prior(image: np.ndarray, flow: information_flow.Flow | None, weight: float = FG_PRIOR):
    """``prior`` for foreground.estimate_foreground: the K-to-U flows' foreground and background
    colours (their weighted neighbour means) as targets for the unknown pixels, with a constant
    weight; None without a flow."""
    if flow is None or weight <= 0:
        return None
    h, w = image.shape[:2]
    target = np.concatenate([image, image], axis=2).astype(np.float32)
    t = target.reshape(-1, 6)
    t[flow.idx, :3] = flow.fg
    t[flow.idx, 3:] = flow.bg
    wgt = np.zeros((h, w), np.float32)
    wgt.flat[flow.idx] = weight
    return target, wgt

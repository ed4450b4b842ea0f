"""The classical engine's v2 additions to the closed-form energy, in one call.

    transparency check -> (opaque) K-to-U flow -> patch-based trimming, kept where the flow's
                          alpha_hat agrees (within AGREE)
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
AGREE = 0.2   # a trimming decision is kept where |alpha_hat - decision| < AGREE
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
                 transparency_threshold: float = transparency.THRESHOLD, tau: float = TAU,
                 agree_within: float = AGREE) -> AlphaPriors:
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
    alpha_hat = np.clip(flow.alpha_hat, 0.0, 1.0)
    if trim:
        trimmed = trimming.trim(image, trimap)
        # keep a trimming decision only where the K-to-U estimate agrees with it: a decided
        # pixel becomes a hard constraint, and a few wrong ones inside translucent hair pin
        # the strands around them (GT08, Trimap1: SAD 11.4 -> 21.1 without this check, 13.3 with)
        agree = np.zeros(trimap.shape, bool)
        agree.flat[flow.idx] = np.abs(alpha_hat - trimmed.flat[flow.idx] / 255.0) < agree_within
        keep = (trimmed != trimap) & agree
        out.trimmed = int(np.count_nonzero(keep))
        if out.trimmed:
            out.trimap = np.where(keep, trimmed, trimap)
        out.seconds["trim"] = time.perf_counter() - t2
    if sigma > 0:
        conf = np.exp(-(information_flow.mixture_residual(image, flow) / tau) ** 2) if tau > 0 else 1.0
        out.weight = np.zeros(trimap.shape)
        out.alpha = np.zeros(trimap.shape)
        out.weight.flat[flow.idx] = sigma * flow.eta * conf
        out.alpha.flat[flow.idx] = alpha_hat
    return out


def foreground_prior(image: np.ndarray, flow: information_flow.Flow | None, weight: float = FG_PRIOR):
    """``prior`` for foreground.estimate_foreground: the K-to-U flows' foreground and background
    colours (their weighted neighbour means) as targets for the unknown pixels, with a constant
    weight; None without a flow. Only the flow's pixels are listed (no crop-sized arrays)."""
    from .foreground import PixelPrior
    if flow is None or weight <= 0:
        return None
    target = np.concatenate([flow.fg, flow.bg], axis=1).astype(np.float32)
    return PixelPrior(flow.idx, target, np.full(flow.idx.size, weight, np.float32))

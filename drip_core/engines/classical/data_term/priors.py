"""The classical engine's v2 additions to the closed-form energy, in one call.

    transparency check -> (opaque) K-to-U flow -> patch-based trimming, kept where the flow's
                          alpha_hat agrees (within AGREE), or where the pixel is far from any
                          known one and its neighbours agree (deep_unknown.py)
                       -> (transparent) nothing: plain closed form

Returns what ``closed_form_alpha`` needs: the trimap to solve with (trimmed pixels become
known), and the K-to-U data term for the pixels that stay unknown: target alpha_hat clipped
to [0, 1], weight sigma * confidence (see ``confidence``: the separation of the flows'
foreground and background colours, and the mixture residual).  ``image`` is the crop as float
in [0, 1], ``trimap`` its uint8 0 / 128 / 255 trimap.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import deep_unknown, information_flow, transparency, trimming

SIGMA = 0.1   # weight of the K-to-U term against Levin's (unnormalised) matting Laplacian
TAU = 0.05    # mixture-residual scale of the per-pixel confidence
AGREE = 0.2   # a trimming decision is kept where |alpha_hat - decision| < AGREE
FG_PRIOR = 0.01  # weight of the flows' colours in the foreground stage


@dataclass
class AlphaPriors:
    trimap: np.ndarray                 # trimap to solve with (the input, plus trimmed pixels)
    weight: np.ndarray | None = None   # H x W data-term weight (0 outside the unknown region)
    alpha: np.ndarray | None = None    # H x W data-term target
    flow: information_flow.Flow | None = None
    transparent: bool = False
    trimmed: int = 0                   # unknown pixels that trimming made known
    deep: int = 0                      # ... of them deep, against the flow (deep_unknown.py)
    known: trimming.KnownPatchSet | None = None  # the known patches trimming compared with
    seconds: dict = field(default_factory=dict)


def alpha_priors(image: np.ndarray, trimap: np.ndarray, sigma: float = SIGMA, trim: bool = True,
                 transparency_threshold: float = transparency.THRESHOLD, tau: float = TAU,
                 agree_within: float = AGREE, transparent: bool | None = None,
                 spatial: float | tuple[float, float] = information_flow.SPATIAL,
                 flow: information_flow.Flow | None = None, trimmed: np.ndarray | None = None,
                 patches: trimming.NearUnknown | None = None) -> AlphaPriors:
    """``transparent`` given: that decision instead of the check; ``spatial``: the flow's weight of
    the pixel coordinates (normalised by the crop's size). A local re-solve passes the whole job's
    decision and the weight that gives its crop the whole region's scale (local_resolve.py).
    ``flow`` given: that K-to-U flow instead of computing it; ``trimmed`` given: the trimap as
    trimming already left it (a tile of a large crop: the whole crop is trimmed at once, see
    classical.py), not trimmed again; ``patches``: trimming's patches (trimming.patches_near_unknown)
    when already made (a local re-solve's, holding the whole region's known patches)."""
    out = AlphaPriors(trimap)
    if sigma <= 0 and not trim:
        return out
    t0 = time.perf_counter()
    out.transparent = (transparency.transparency_score(image, trimap) > transparency_threshold
                       if transparent is None else transparent)
    t1 = time.perf_counter()
    out.seconds["transparency"] = t1 - t0
    if out.transparent:
        return out
    made = None
    if trim and trimmed is None and patches is None:
        # trimming's patch moments do not need the flow: made on the other core while it runs
        pool = ThreadPoolExecutor(max_workers=1)
        made = pool.submit(trimming.patches_near_unknown, image, trimap)
        pool.shutdown(wait=False)
    if flow is None:
        flow = information_flow.known_to_unknown(image, trimap, spatial=spatial)
    if made is not None:
        patches = made.result()
    t2 = time.perf_counter()
    out.seconds["flow"] = t2 - t1
    if flow is None:  # no known foreground or background near the unknown region
        return out
    out.flow = flow
    alpha_hat = np.clip(flow.alpha_hat, 0.0, 1.0)
    if trim:
        if trimmed is None:
            may_be = [np.zeros(trimap.shape, bool) for _ in range(2)]
            mark_agreeing(may_be, flow.idx, flow.alpha_hat, agree_within)
            # pixels far from any known one: the gate is open (deep_unknown.py)
            trimmed, out.deep = deep_unknown.trim(image, trimap, *may_be, patches=patches)
            out.known = patches.known
        out.trimmed = int(np.count_nonzero(trimmed != trimap))
        if out.trimmed:
            out.trimap = trimmed
        out.seconds["trim"] = time.perf_counter() - t2
    if sigma > 0:
        out.weight = np.zeros(trimap.shape)
        out.alpha = np.zeros(trimap.shape)
        out.weight.flat[flow.idx] = sigma * confidence(image, flow, tau)
        out.alpha.flat[flow.idx] = alpha_hat
    return out


def mark_agreeing(may_be: list[np.ndarray], idx: np.ndarray, alpha_hat: np.ndarray,
                  agree_within: float = AGREE):
    """Sets ``may_be`` = [may become foreground, may become background] (bool H x W) at the flat
    pixels ``idx`` from their K-to-U alpha_hat. A trimming decision is kept only where the K-to-U
    estimate agrees with it: a decided pixel becomes a hard constraint, and a few wrong ones
    inside translucent hair pin the strands around them; the other pixels are not searched at all."""
    may_be[0].flat[idx] = alpha_hat > 1.0 - agree_within
    may_be[1].flat[idx] = alpha_hat < agree_within


def confidence(image: np.ndarray, flow: information_flow.Flow, tau: float = TAU) -> np.ndarray:
    """Per unknown pixel, how far alpha_hat is to be trusted: sep^2 exp(-(R / tau)^2) with
    sep = |F^ - B^|^2 / 3 the separation of the flows' foreground and background colours
    (alpha_hat is ill-determined where they are alike: hair in front of similar colours) and
    R the mixture residual (information_flow.mixture_residual: the pixel is no mix of them).
    sep^2 rather than Aksoy et al.'s eta = |sum_F w c - sum_B w c|^2 / 3: it was the more accurate
    on the benchmark photos (docs/lab-notes.md, "Figures behind the engine's constants")."""
    sep = ((flow.fg - flow.bg) ** 2).sum(axis=1) / 3.0
    conf = sep ** 2
    if tau > 0:
        conf = conf * np.exp(-(information_flow.mixture_residual(image, flow) / tau) ** 2)
    return conf


def foreground_prior(image: np.ndarray, flow: information_flow.Flow | None, weight: float = FG_PRIOR):
    """``prior`` for foreground.estimate_foreground: the K-to-U flows' foreground and background
    colours (their weighted neighbour means) as targets for the unknown pixels, with a constant
    weight; None without a flow. Only the flow's pixels are listed (no crop-sized arrays)."""
    from ..foreground import PixelPrior
    if flow is None or weight <= 0:
        return None
    target = np.concatenate([flow.fg, flow.bg], axis=1).astype(np.float32)
    return PixelPrior(flow.idx, target, np.full(flow.idx.size, weight, np.float32))

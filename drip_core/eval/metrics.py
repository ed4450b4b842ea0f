"""Matting error metrics, reproducing the DIM MATLAB evaluation code (Xu et al. 2017/2018).

Conventions (see docs of the MATLAB files compute_{sad,mse,gradient,connectivity}_*.m):
alpha maps are uint8 0..255, the evaluated region is trimap == UNKNOWN, and the prediction is
first clamped to the trimap's known regions (0 / 255), because Grad and Conn look at
the whole map through a filter or a connected-component pass.

Scales, as papers print them: SAD / 1000, MSE raw (multiply by 1e3 to print), Grad / 1000,
Conn / 1000.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..trimaps.values import BACKGROUND, FOREGROUND, UNKNOWN


@dataclass
class AlphaErrors:
    sad: float
    mse: float   # raw mean squared error; papers print mse * 1e3
    grad: float
    conn: float

    def as_dict(self) -> dict:
        return {"sad": self.sad, "mse": self.mse, "grad": self.grad, "conn": self.conn}


def _check(pred, gt, trimap):
    pred, gt, trimap = np.asarray(pred), np.asarray(gt), np.asarray(trimap)
    if pred.shape != gt.shape or gt.shape != trimap.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape}, gt {gt.shape} and trimap {trimap.shape} "
                         f"must be equal 2-D shapes")
    for name, arr in (("pred", pred), ("gt", gt), ("trimap", trimap)):
        if arr.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8 0..255, got {arr.dtype}")
    return pred, gt, trimap


def clamp_to_trimap(pred: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """The prediction with the trimap's known regions imposed (0 where 0, 255 where 255)."""
    out = np.array(pred, dtype=np.uint8, copy=True)
    out[trimap == BACKGROUND] = 0
    out[trimap == FOREGROUND] = 255
    return out


def sad(pred, gt, trimap) -> float:
    pred, gt, trimap = _check(pred, gt, trimap)
    m = trimap == UNKNOWN
    diff = np.abs(pred[m].astype(np.float64) - gt[m].astype(np.float64))
    return float(diff.sum() / 255.0 / 1000.0)


def mse(pred, gt, trimap) -> float:
    pred, gt, trimap = _check(pred, gt, trimap)
    m = trimap == UNKNOWN
    n = int(m.sum())
    if n == 0:
        return 0.0
    diff = (pred[m].astype(np.float64) - gt[m].astype(np.float64)) / 255.0
    return float((diff * diff).sum() / n)


def _mat2gray(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    lo, hi = x.min(), x.max()
    if hi <= lo:  # MATLAB returns a constant map; its gradient is zero either way
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def _gauss_kernels(sigma: float, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """1-D factors of gaussgradient.m's hx = G(u_i) G'(u_j), each L2-normalised.

    The 2-D kernel is an outer product, so normalising it equals normalising both factors."""
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-u * u / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))
    dg = -u * g / (sigma * sigma)
    return g / np.linalg.norm(g), dg / np.linalg.norm(dg)


def _gradient_amplitude(x: np.ndarray, sigma: float) -> np.ndarray:
    # correlation instead of MATLAB's convolution only flips the sign of gx / gy
    g, dg = _gauss_kernels(sigma)
    gx = ndimage.correlate1d(ndimage.correlate1d(x, g, axis=0, mode="nearest"), dg, axis=1, mode="nearest")
    gy = ndimage.correlate1d(ndimage.correlate1d(x, g, axis=1, mode="nearest"), dg, axis=0, mode="nearest")
    return np.sqrt(gx * gx + gy * gy)


def gradient_error(pred, gt, trimap, sigma: float = 1.4) -> float:
    pred, gt, trimap = _check(pred, gt, trimap)
    amp_p = _gradient_amplitude(_mat2gray(pred), sigma)
    amp_g = _gradient_amplitude(_mat2gray(gt), sigma)
    d = (amp_p - amp_g)[trimap == UNKNOWN]
    return float((d * d).sum() / 1000.0)


def _matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's start:step:stop, built symmetrically from both ends as MATLAB does."""
    n = int(math.floor((stop - start) / step + 1e-10))
    k = np.arange(n + 1, dtype=np.float64)
    fwd = start + k * step
    bwd = stop - (n - k) * step
    return np.where(k < n / 2.0, fwd, bwd)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)  # default structure = 4-connectivity
    if count == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # label 0 is the background, never the component
    return labels == int(np.argmax(sizes))


def connectivity_error(pred, gt, trimap, step: float = 0.1, precision: str = "double") -> float:
    """Connectivity error (compute_connectivity_error.m).

    precision "single" follows MATLAB, which divides single(x)/255: pixels at exactly
    51/102/153/204 sit on a threshold and count as >= it.  "double" follows the Python
    ports (mmeval): float64 x/255 against np.arange thresholds, where 0.6000000000000001
    drops the 153 pixels below the 0.6 threshold; means differ by ~0.3% on blurred maps.
    The default is "double": the project's reference figures (and mmeval's) are computed so.
    """
    pred, gt, trimap = _check(pred, gt, trimap)
    if precision == "single":
        dt, steps = np.float32, _matlab_colon(0.0, step, 1.0)
    elif precision == "double":
        dt, steps = np.float64, np.arange(0.0, 1.0 + step, step)
    else:
        raise ValueError("precision must be 'single' or 'double'")
    p = pred.astype(dt) / dt(255)
    g = gt.astype(dt) / dt(255)
    steps = steps.astype(dt)
    level = np.full(pred.shape, -1.0, dtype=dt)
    for i in range(1, len(steps)):
        omega = _largest_component((p >= steps[i]) & (g >= steps[i]))
        level[(level == -1) & ~omega] = steps[i - 1]
    level[level == -1] = 1.0
    dp = p - level
    dg = g - level
    phi_p = 1 - dp * (dp >= 0.15)
    phi_g = 1 - dg * (dg >= 0.15)
    m = trimap == UNKNOWN
    return float(np.abs(phi_p - phi_g)[m].astype(np.float64).sum() / 1000.0)


def alpha_errors(pred, gt, trimap, clamp: bool = True, conn_precision: str = "double") -> AlphaErrors:
    """All four DIM metrics; ``clamp`` imposes the trimap's known regions on ``pred`` first."""
    pred, gt, trimap = _check(pred, gt, trimap)
    if clamp:
        pred = clamp_to_trimap(pred, trimap)
    return AlphaErrors(sad(pred, gt, trimap), mse(pred, gt, trimap),
                       gradient_error(pred, gt, trimap),
                       connectivity_error(pred, gt, trimap, precision=conn_precision))


def to_uint8(alpha: np.ndarray) -> np.ndarray:
    """Float alpha in [0, 1] quantised the way a saved PNG would be."""
    return np.clip(np.rint(np.asarray(alpha, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


# -- foreground colour error --------------------------------------------------------------

@dataclass
class ForegroundErrors:
    sad: float  # sum of alpha-weighted |F - F_gt| over region and channels, / 1000
    mse: float  # mean of alpha-weighted (F - F_gt)^2 over region pixels x channels (raw)

    def as_dict(self) -> dict:
        return {"sad": self.sad, "mse": self.mse}


def _foreground_region(variant: str, a: np.ndarray, trimap) -> np.ndarray:
    if variant == "germer":
        return (a > 0) & (a < 1)
    if variant in ("unknown", "drip"):
        if trimap is None:
            raise ValueError(f"the '{variant}' variant needs the trimap")
        unknown = np.asarray(trimap) == UNKNOWN
        return unknown & (a > 0) if variant == "drip" else unknown
    if variant == "drip-all":
        return a > 0
    raise ValueError(f"unknown foreground-error variant '{variant}' (one of {', '.join(FG_VARIANTS)})")


FG_VARIANTS = ("drip", "drip-all", "unknown", "germer")


def foreground_errors(pred_fg, gt_fg, gt_alpha, trimap=None, variant: str = "germer") -> ForegroundErrors:
    """Alpha-weighted foreground colour errors; colours and alpha as floats in [0, 1].

    variant "drip": DRIP's protocol (after FBA), the errors of alpha_gt * F on the unknown
        region where alpha_gt > 0: SAD = sum alpha_gt |F - F_gt| over pixels and channels / 1000,
        MSE = sum (alpha_gt (F - F_gt))^2 / (3 * pixels).
    variant "drip-all": the same on every pixel with alpha_gt > 0 (no trimap).
    variant "germer": region 0 < alpha_gt < 1, as Germer et al. / pymatting's
        foreground-estimation-evaluation (only where the foreground is actually mixed);
        MSE there weighs the squared error by alpha_gt (not alpha_gt squared).
    variant "unknown": region trimap == UNKNOWN, alpha_gt-weighted as "germer" (pixels with
        alpha_gt = 0 count in the mean but add nothing), BackgroundMattingV2's benchmark style.
    """
    f = np.asarray(pred_fg, dtype=np.float64)
    fg = np.asarray(gt_fg, dtype=np.float64)
    a = np.asarray(gt_alpha, dtype=np.float64)
    if f.shape != fg.shape or f.shape[:2] != a.shape or f.ndim != 3:
        raise ValueError("pred_fg / gt_fg must be HxWx3 and gt_alpha HxW of the same size")
    region = _foreground_region(variant, a, trimap)
    n = int(region.sum())
    if n == 0:
        return ForegroundErrors(0.0, 0.0)
    w = a[region][:, None]
    d = f[region] - fg[region]
    sq = (w * d) ** 2 if variant.startswith("drip") else w * d * d
    return ForegroundErrors(float((w * np.abs(d)).sum() / 1000.0), float(sq.sum() / (3 * n)))

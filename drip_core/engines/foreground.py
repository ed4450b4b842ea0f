"""Multilevel foreground estimation (Germer, Uelwer, Conrad, Harmeling 2020), vectorised.

For every pixel, F and B minimise
    sum_c (a F_c + (1 - a) B_c - I_c)^2 + sum_{j in N4} w_ij (|F_i - F_j|^2 + |B_i - B_j|^2),
    w_ij = r + g |a_i - a_j|,
solved coarse to fine: the image and alpha are resized to a pyramid, F and B from the
coarser level start each finer one, and a few relaxation sweeps refine them.  Each
sweep solves the per-pixel 2x2 system with the neighbours fixed, updating the two
checkerboard colours in turn (red-black Gauss-Seidel), so it vectorises with no
compiled loop and converges like the original sequential sweep.
"""
from __future__ import annotations

import math

import numpy as np


def _resize_nearest(x: np.ndarray, h: int, w: int) -> np.ndarray:
    ys = np.minimum((np.arange(h) + 0.5) * x.shape[0] / h, x.shape[0] - 1).astype(np.intp)
    xs = np.minimum((np.arange(w) + 0.5) * x.shape[1] / w, x.shape[1] - 1).astype(np.intp)
    return x[ys[:, None], xs[None, :]]


COLOURS = 2  # red-black sweeps (1: Jacobi)


def _neighbour_sum(x: np.ndarray, wts) -> np.ndarray:
    """sum_j w_ij x_j over the 4 neighbours (weights are zero across the border)."""
    up, down, left, right = wts
    out = np.zeros_like(x)
    if x.ndim == 3:
        up, down, left, right = up[..., None], down[..., None], left[..., None], right[..., None]
    out[1:] += up[1:] * x[:-1]
    out[:-1] += down[:-1] * x[1:]
    out[:, 1:] += left[:, 1:] * x[:, :-1]
    out[:, :-1] += right[:, :-1] * x[:, 1:]
    return out


def _relax(image, alpha, fb, iterations, regularization, gradient_weight, check_cancel, colours=2):
    """Relaxation sweeps on fb = [F | B] (H x W x 6), in place."""
    h, w = alpha.shape
    a = alpha
    # w_ij toward each neighbour: index [y, x] holds the weight to the pixel above / below / ...
    up = np.zeros((h, w, 1), image.dtype)
    down = np.zeros_like(up)
    left = np.zeros_like(up)
    right = np.zeros_like(up)
    up[1:, :, 0] = regularization + gradient_weight * np.abs(a[1:] - a[:-1])
    down[:-1] = up[1:]
    left[:, 1:, 0] = regularization + gradient_weight * np.abs(a[:, 1:] - a[:, :-1])
    right[:, :-1] = left[:, 1:]
    wsum = (up + down + left + right)[..., 0]
    # per-pixel 2x2 matrix [[a^2 + W, a(1-a)], [a(1-a), (1-a)^2 + W]], inverted once per level
    a1 = 1.0 - a
    m00 = a * a + wsum
    m01 = a * a1
    m11 = a1 * a1 + wsum
    det = np.maximum(m00 * m11 - m01 * m01, 1e-12)
    i00, i01, i11 = (m11 / det)[..., None], (-m01 / det)[..., None], (m00 / det)[..., None]
    data = np.concatenate([a[..., None] * image, a1[..., None] * image], axis=2)
    rhs = np.empty_like(fb)
    new = np.empty_like(fb)
    if colours == 2:
        yy, xx = np.indices((h, w))
        red = ((yy + xx) % 2 == 0)[..., None]
        masks = (red, ~red)
    else:
        masks = (None,)
    for it in range(iterations):
        for mask in masks:
            # rhs = data + sum_j w_ij [F_j | B_j]
            np.copyto(rhs, data)
            rhs[1:] += up[1:] * fb[:-1]
            rhs[:-1] += down[:-1] * fb[1:]
            rhs[:, 1:] += left[:, 1:] * fb[:, :-1]
            rhs[:, :-1] += right[:, :-1] * fb[:, 1:]
            rf, rb = rhs[..., :3], rhs[..., 3:]
            np.multiply(i00, rf, out=new[..., :3])
            new[..., :3] += i01 * rb
            np.multiply(i01, rf, out=new[..., 3:])
            new[..., 3:] += i11 * rb
            np.clip(new, 0.0, 1.0, out=new)
            if mask is None:
                fb[...] = new
            else:
                np.copyto(fb, new, where=mask)
        if check_cancel is not None and it % 2 == 1:
            check_cancel()
    return fb


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, regularization: float = 1e-5,
                        gradient_weight: float = 1.0, small_size: int = 32, small_iterations: int = 10,
                        big_iterations: int = 2, check_cancel=None, return_background: bool = False):
    """Foreground colours (H x W x 3 in [0, 1]) for ``image`` (float, [0, 1]) and ``alpha``."""
    image = np.asarray(image, dtype=np.float32)
    alpha = np.asarray(alpha, dtype=np.float32)
    h0, w0 = alpha.shape
    levels = max(1, math.ceil(math.log2(max(h0, w0))))
    fb = None
    for level in range(levels + 1):
        # geometric pyramid from 1x1 to full size, as in the paper
        h = max(1, round(h0 ** (level / levels)))
        w = max(1, round(w0 ** (level / levels)))
        img = _resize_nearest(image, h, w)
        a = _resize_nearest(alpha, h, w)
        if fb is None:
            fb = np.broadcast_to(np.tile(image.reshape(-1, 3).mean(axis=0), 2), (h, w, 6)).copy()
        else:
            fb = _resize_nearest(fb, h, w)
        iterations = small_iterations if max(h, w) <= small_size else big_iterations
        fb = _relax(img, a, fb, iterations, np.float32(regularization), np.float32(gradient_weight),
                    check_cancel, COLOURS)
    fg, bg = fb[..., :3], fb[..., 3:]
    return (fg, bg) if return_background else fg

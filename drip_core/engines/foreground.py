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
    return x.take(ys, axis=0).take(xs, axis=1)  # two 1-D takes: much faster than a 2-D fancy index


def _split(x: np.ndarray, h2: int, w2: int) -> list[list[np.ndarray]]:
    """The four parity sub-grids x[py::2, px::2] of x zero-padded to (2 h2, 2 w2)."""
    pad = np.zeros((2 * h2, 2 * w2) + x.shape[2:], x.dtype)
    pad[:x.shape[0], :x.shape[1]] = x
    return [[np.ascontiguousarray(pad[py::2, px::2]) for px in (0, 1)] for py in (0, 1)]


def _merge(sub, h: int, w: int) -> np.ndarray:
    h2, w2 = sub[0][0].shape[:2]
    out = np.empty((2 * h2, 2 * w2) + sub[0][0].shape[2:], sub[0][0].dtype)
    for py in (0, 1):
        for px in (0, 1):
            out[py::2, px::2] = sub[py][px]
    return out[:h, :w]


def _add_shifted(rhs, wgt, src, di, dj, tmp):
    """rhs[i, j] += wgt[i, j] * src[i + di, j + dj] where that index exists (tmp: scratch
    of rhs's shape, so no large temporary is allocated per call)."""
    if di == -1:
        r, wg, sr, t = rhs[1:], wgt[1:], src[:-1], tmp[1:]
    elif di == 1:
        r, wg, sr, t = rhs[:-1], wgt[:-1], src[1:], tmp[:-1]
    elif dj == -1:
        r, wg, sr, t = rhs[:, 1:], wgt[:, 1:], src[:, :-1], tmp[:, 1:]
    elif dj == 1:
        r, wg, sr, t = rhs[:, :-1], wgt[:, :-1], src[:, 1:], tmp[:, :-1]
    else:
        r, wg, sr, t = rhs, wgt, src, tmp
    np.multiply(wg, sr, out=t)
    r += t


# neighbour of sub-grid (py, px) in direction d: (sub-grid, row shift, column shift);
# pixel (i, j) of sub-grid (py, px) is pixel (2i + py, 2j + px) of the level
def _neighbour(py, px, d):
    if d == "up":
        return ((0, px), 0, 0) if py == 1 else ((1, px), -1, 0)
    if d == "down":
        return ((1, px), 0, 0) if py == 0 else ((0, px), 1, 0)
    if d == "left":
        return ((py, 0), 0, 0) if px == 1 else ((py, 1), 0, -1)
    return ((py, 1), 0, 0) if px == 0 else ((py, 0), 0, 1)


DIRECTIONS = ("up", "down", "left", "right")
RED_BLACK = ((0, 0), (1, 1), (0, 1), (1, 0))  # (0,0) and (1,1) never touch, nor (0,1) and (1,0)


def _relax(image, alpha, fb, iterations, regularization, gradient_weight, check_cancel, prior=None):
    """Red-black Gauss-Seidel sweeps on fb = [F | B] (H x W x 6); returns the new fb.

    The level is split into its four parity sub-grids so each half-sweep touches only the
    pixels it updates (no masked, wasted work)."""
    h, w = alpha.shape
    a = alpha
    wgt = {d: np.zeros((h, w, 1), image.dtype) for d in DIRECTIONS}
    vertical = regularization + gradient_weight * np.abs(a[1:] - a[:-1])
    horizontal = regularization + gradient_weight * np.abs(a[:, 1:] - a[:, :-1])
    wgt["up"][1:, :, 0] = vertical
    wgt["down"][:-1, :, 0] = vertical
    wgt["left"][:, 1:, 0] = horizontal
    wgt["right"][:, :-1, 0] = horizontal
    wsum = sum(wgt.values())[..., 0]
    # per-pixel 2x2 matrix [[a^2 + W, a(1-a)], [a(1-a), (1-a)^2 + W]], inverted once per level
    a1 = 1.0 - a
    m00 = a * a + wsum
    m01 = a * a1
    m11 = a1 * a1 + wsum
    if prior is not None:  # data term p (|F - F^|^2 + |B - B^|^2): a diagonal and a right-hand side
        target, p = prior
        m00 = m00 + p
        m11 = m11 + p
    det = np.maximum(m00 * m11 - m01 * m01, 1e-12)
    inv = np.stack([m11 / det, -m01 / det, m00 / det], axis=2)
    data = np.concatenate([a[..., None] * image, a1[..., None] * image], axis=2)
    if prior is not None:
        data += p[..., None] * target

    h2, w2 = (h + 1) // 2, (w + 1) // 2
    F = _split(fb, h2, w2)
    W = {d: _split(wgt[d], h2, w2) for d in DIRECTIONS}
    I = _split(inv, h2, w2)
    D = _split(data, h2, w2)
    rhs = np.empty_like(F[0][0])
    tmp = np.empty_like(rhs)
    for it in range(iterations):
        for py, px in RED_BLACK:
            np.copyto(rhs, D[py][px])
            for d in DIRECTIONS:
                (ny, nx), di, dj = _neighbour(py, px, d)
                _add_shifted(rhs, W[d][py][px], F[ny][nx], di, dj, tmp)
            iv = I[py][px]
            i00, i01, i11 = iv[..., 0:1], iv[..., 1:2], iv[..., 2:3]
            rf, rb = rhs[..., :3], rhs[..., 3:]
            out = F[py][px]
            t3 = tmp[..., :3]
            np.multiply(i00, rf, out=out[..., :3])
            np.multiply(i01, rb, out=t3)
            out[..., :3] += t3
            np.multiply(i01, rf, out=out[..., 3:])
            np.multiply(i11, rb, out=t3)
            out[..., 3:] += t3
            np.clip(out, 0.0, 1.0, out=out)
        if check_cancel is not None and it % 2 == 1:
            check_cancel()
    return _merge(F, h, w)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, regularization: float = 1e-5,
                        gradient_weight: float = 1.0, small_size: int = 32, small_iterations: int = 10,
                        big_iterations: int = 2, check_cancel=None, report=None, prior=None):
    """Foreground colours (H x W x 3 in [0, 1]) for ``image`` (float, [0, 1]) and ``alpha``.

    ``report(fraction)`` is called after each pyramid level (work grows ~4x per level).
    ``prior`` = (target H x W x 6 = [F^ | B^], weight H x W), optional: adds
    weight (|F - F^|^2 + |B - B^|^2) per pixel (e.g. the K-to-U neighbours' colours)."""
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
        lvl_prior = None
        if prior is not None:
            lvl_prior = (_resize_nearest(np.asarray(prior[0], np.float32), h, w),
                         _resize_nearest(np.asarray(prior[1], np.float32), h, w))
        fb = _relax(img, a, fb, iterations, np.float32(regularization), np.float32(gradient_weight),
                    check_cancel, lvl_prior)
        if report is not None:
            report(4.0 ** (level - levels))
    return fb[..., :3]  # the background estimate (fb[..., 3:]) only serves the relaxation
